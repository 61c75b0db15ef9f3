"""Photonic integrated circuits: MZI meshes (this package's mesh engine and plant) and their kin."""
