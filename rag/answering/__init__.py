"""The answer side: the Assistant chain, the extractive answerer, citation checks, follow-ups and sentences."""
