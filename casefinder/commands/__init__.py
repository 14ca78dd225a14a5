"""CLI commands, one module per stage. Each module's `register(app)` adds its commands.

Commands parse arguments, call the stage's public API and print; the work lives in the stages.
"""
