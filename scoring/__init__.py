"""Monthly scoring runs and MDT risk lists: score, rank, exclude, explain, store, export."""
