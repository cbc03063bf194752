"""Output formats: pure functions from analyzer views to text, one module per format.

Every function is deterministic (rows and columns in endpoint order, which is sorted) so its
output can be compared with golden files.
"""
