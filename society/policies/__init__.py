"""Heuristic policies: which take each citizen asks for, as whole-population kernels."""
