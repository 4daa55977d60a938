"""``padecache.testing``: what plugin authors and researchers test with (contract suites, tiny models).

Importing this module needs pytest only for the contract mixins; the tiny-model factories need
``transformers`` for pipelines with text encoders.
"""
