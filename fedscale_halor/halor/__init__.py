"""Halor's data management (docs/halor.md): the server learns the label-histogram sum of a round's clients through
chained (ring) masking, and the selected clients resample their data towards the resulting global distribution."""
