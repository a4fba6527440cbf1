"""Entry point: `escli` and `python -m escli`."""

from __future__ import annotations


def main() -> None:
    from escli.cli.app import run

    run()


if __name__ == "__main__":
    main()
