"""Sparse Jacobians and Hessians: AutoSparse, sparsity detectors, colouring, compression."""
