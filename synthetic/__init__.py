"""Synthetic linked care records: a population whose latent health and social state evolves month
by month, written as an extract in the contract's shape, with each person's true risk (oracle)."""

from synthetic.config import SynthConfig
from synthetic.generate import ORACLE_FILE, SynthSummary, generate

__all__ = ["ORACLE_FILE", "SynthConfig", "SynthSummary", "generate"]
