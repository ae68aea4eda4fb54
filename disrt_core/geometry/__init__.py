"""Geometry of the SLP bed: the label (bed) frame, the pressure-mat and network grids, the
depth normalisation (SPEC §1.4, §7.3, §7.6), and the preprocessing of any depth camera into
the network's input.
"""
