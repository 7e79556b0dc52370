"""`python -m semantic_genesis` is the same as the `semgen` command."""

from semantic_genesis.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
