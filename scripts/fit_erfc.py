#!/usr/bin/env python3
"""The polynomial behind erfcAndGaussian8 in Sources/DPBackend/CPU/VectorMath.swift.

    python3 scripts/fit_erfc.py        # prints the coefficients and their float32 error

erfc(z) = t * Q(t) * exp(-z^2) with t = 1 / (1 + z / 2), for z in [0, 9]. Q(t) = erfcx(z) / t is
smooth on t in [1/5.5, 1], so a Chebyshev fit of degree 8 reaches ~2e-7 relative error once its
coefficients are rounded to float32 and it is evaluated by Horner's rule in float32, the same
accuracy as Numerical Recipes' erfc, whose t * exp(P(t) - z^2) costs a second exp.
Needs numpy and scipy (both come with the PyTorch install of scripts/setup.sh).
"""
import numpy as np
from scipy.special import erfcx

DEGREE = 8
Z_MAX = 9.0
T_MIN = 1 / (1 + Z_MAX / 2)


def q_exact(t):
    return erfcx(2 * (1 - t) / t) / t


def main():
    nodes = np.cos(np.linspace(0, np.pi, 4000)) * (1 - T_MIN) / 2 + (1 + T_MIN) / 2
    fit = np.polynomial.chebyshev.Chebyshev.fit(nodes, q_exact(nodes), DEGREE, domain=[T_MIN, 1])
    power = fit.convert(kind=np.polynomial.Polynomial, domain=[T_MIN, 1], window=[T_MIN, 1])
    coefficients = power.coef.astype(np.float32)
    t = np.linspace(T_MIN, 1, 200_001).astype(np.float32)
    q = np.full_like(t, coefficients[-1])
    for c in coefficients[-2::-1]:
        q = (q * t + c).astype(np.float32)
    error = np.abs(q.astype(np.float64) / q_exact(t.astype(np.float64)) - 1).max()
    print(f"degree {DEGREE}, max relative error in float32: {error:.2e}")
    print("highest power first:")
    for c in coefficients[::-1]:
        print(f"    {float(c):.9e}")


if __name__ == "__main__":
    main()
