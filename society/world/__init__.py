"""The world citizens share: the social graph and the commons, with their Numba kernels."""
