"""Norms: what citizens believe others do and should do, how they talk and learn, and norm-emergence metrics.

Norms are measured in take ratios (a take divided by the taker's sustainable share, the unit the core
policies think in), so a norm keeps its meaning as the stock rises and falls. Phases registered here:
`norm_beliefs`, `communicate`, `social_learning`, `norm_punish` and `public_goods`.
"""
