"""The test suite's tiny pipelines: the ones padecache ships for plugin authors (:mod:`padecache.testing.pipelines`)."""

from padecache.testing.pipelines import *  # noqa: F401,F403
from padecache.testing.pipelines import (  # noqa: F401
    applied,
    dit_pipeline,
    flux_pipeline,
    pixart_pipeline,
    run_dit,
    run_flux,
    run_pixart,
    run_sd3,
    run_wan,
    sd3_pipeline,
    wan_pipeline,
)
