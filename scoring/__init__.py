"""Monthly scoring runs and MDT risk lists: score, rank, exclude, explain, store, export.

Pure steps (DataFrames and settings in, DataFrames out): `scoring.rules.build_list`,
`scoring.run.make_run`, `scoring.drift.psi`, `scoring.summary.render_summary`,
`scoring.exports.list_table`. I/O: `scoring.run.score_month` (registry, extract, store),
`scoring.store.ScoreStore`, `scoring.exports.write_export`. See docs/lists.md.
"""
