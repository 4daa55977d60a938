from .static import AlwaysPolicy, BudgetPolicy, FixedPolicy, MaskPolicy, StaticPolicy, budget_mask

__all__ = ["AlwaysPolicy", "BudgetPolicy", "FixedPolicy", "MaskPolicy", "StaticPolicy", "budget_mask"]
