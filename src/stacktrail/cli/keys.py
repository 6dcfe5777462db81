"""`stacktrail keys generate`: the Ed25519 key that signs the archive digests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stacktrail.signing import generate_key_files

keys_app = typer.Typer(help="The archive digest signing key.", no_args_is_help=True)


@keys_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", help="Private key file to write (0600).")],
) -> None:
    """Write a new private key to FILE and its public key to FILE.pub.

    Point STACKTRAIL_DIGEST_KEY_FILE at FILE to sign digests with it; an existing file
    is never overwritten.
    """
    try:
        key = generate_key_files(out)
    except FileExistsError:
        typer.echo(f"stacktrail: {out} exists; not overwritten", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"stacktrail: cannot write {out}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out} and {out}.pub (fingerprint {key.fingerprint})")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
