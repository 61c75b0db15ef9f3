"""Local error correction of MZI meshes (Bandyopadhyay, Hamerly & Englund, Optica 8, 1247 (2021))."""

import math

import pytest
import torch

from pnnlab.plants.photonics.decompose import decompose, random_unitary
from pnnlab.plants.photonics.mesh_engine import Rectangular, Triangular, mzi_transfer
from pnnlab.plants.photonics.tolerance import (LocalCorrection, fidelity, local_correction, realised_matrix,
                                               tolerance_analysis)


@pytest.mark.parametrize("layout", [Rectangular, Triangular])
def test_local_correction_restores_fidelity_far_beyond_the_uncorrected_mesh(layout):
    lay = layout(5)
    gen = torch.Generator().manual_seed(4)
    U = random_unitary(5, generator=gen)
    errors = 0.04 * torch.randn(lay.n_mzis, 2, generator=gen, dtype=torch.float64)
    p = decompose(U, layout=lay)
    raw = 1 - float(fidelity(U, realised_matrix(lay, p.theta, p.phi, p.psi, errors)))
    theta, phi, psi = local_correction(lay, p.theta, p.phi, p.psi, errors)
    fixed = 1 - float(fidelity(U, realised_matrix(lay, theta, phi, psi, errors)))
    assert raw > 5e-3
    # each MZI's leftover output phases are pushed forward: without that push (fitting every MZI to its
    # ideal matrix alone) the infidelity only falls by about a quarter
    assert fixed < 1e-3 * raw


def test_local_correction_is_the_identity_without_errors_and_uses_only_each_mzis_own_errors():
    lay = Rectangular(4)
    U = random_unitary(4, generator=torch.Generator().manual_seed(1))
    p = decompose(U, layout=lay)
    theta, phi, psi = local_correction(lay, p.theta, p.phi, p.psi, torch.zeros(lay.n_mzis, 2))
    assert float(fidelity(U, realised_matrix(lay, theta, phi, psi, torch.zeros(lay.n_mzis, 2)))) == pytest.approx(1, abs=1e-12)
    # an error on the LAST column's MZI cannot change the corrected phases of the first column
    errors = torch.zeros(lay.n_mzis, 2, dtype=torch.float64)
    last = int(torch.nonzero(lay.mzi_column == lay.n_columns - 1)[0])
    errors[last] = torch.tensor([0.05, -0.03])
    t2, f2, _ = local_correction(lay, p.theta, p.phi, p.psi, errors)
    first = lay.mzi_column == 0
    assert torch.allclose(t2[first], theta[first]) and torch.allclose(f2[first], phi[first])


def test_the_full_cross_state_stays_out_of_reach_of_an_imperfect_mzi():
    """|T21|^2 <= cos^2(a1 + a2) (module docstring of tolerance.py): a mesh asked for the cross state
    (theta = 0 here: T = [[0, i], [i e^{i phi}, 0]]) keeps an error after correction."""
    lay = Rectangular(2)
    errors = torch.tensor([[0.05, 0.05]], dtype=torch.float64)
    theta, phi, psi = torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    U = realised_matrix(lay, theta, phi, psi, torch.zeros(1, 2, dtype=torch.float64))
    t, f, s = local_correction(lay, theta, phi, psi, errors)
    remaining = 1 - float(fidelity(U, realised_matrix(lay, t, f, s, errors)))
    bound = 1 - math.cos(0.1) ** 2  # the best an MZI with a1 + a2 = 0.1 can do for the cross power
    assert remaining == pytest.approx(bound, rel=0.05)
    cross = mzi_transfer(t, f, coupler_errors=errors, dtype=torch.complex128)[0, 1, 0].abs().square()
    assert float(cross) == pytest.approx(math.cos(0.1) ** 2, abs=1e-6)  # as close to the cross state as it gets


def test_tolerance_analysis_accepts_local_correction_beside_the_global_one():
    raw = tolerance_analysis(n_ports=4, coupler_error_std_rad=0.03, trials=3, seed=2)
    local = tolerance_analysis(n_ports=4, coupler_error_std_rad=0.03, trials=3, seed=2, correction=LocalCorrection(steps=30))
    assert local.corrected and local.mean < 1e-2 * raw.mean
    with pytest.raises(TypeError, match="LocalCorrection"):
        tolerance_analysis(n_ports=4, coupler_error_std_rad=0.03, trials=1, correction="local")
