"""``calflow sandbox``: the provider simulators as one local server."""

from __future__ import annotations

import typer


def sandbox(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8787, "--port", help="Port to listen on."),
    seed: int = typer.Option(20, "--seed", help="Bookings to seed (past and upcoming)."),
    fail_rate: float = typer.Option(
        0.0, "--fail-rate", min=0.0, max=1.0, help="Share of API requests answered with a 5xx."
    ),
    latency: float = typer.Option(
        0.0, "--latency", min=0.0, help="Added latency per request (ms)."
    ),
    rate_limit: int = typer.Option(
        120, "--rate-limit", min=0, help="Requests per minute per API key (0: none)."
    ),
    api_key: str = typer.Option(None, "--api-key", help="Cal.com API key to accept."),
    savvycal_seed: int = typer.Option(
        None, "--savvycal-seed", min=0, help="SavvyCal events to seed (default: --seed)."
    ),
    savvycal_rate_limit: int = typer.Option(
        0, "--savvycal-rate-limit", min=0, help="SavvyCal requests per minute (0: none)."
    ),
    savvycal_token: str = typer.Option(
        None, "--savvycal-token", help="SavvyCal personal token to accept (pt_secret_…)."
    ),
    twilio_account_sid: str = typer.Option(
        None, "--twilio-account-sid", help="Twilio Account SID to accept (AC…)."
    ),
    twilio_auth_token: str = typer.Option(
        None, "--twilio-auth-token", help="Twilio auth token to accept."
    ),
    twilio_mps: float = typer.Option(
        0.0,
        "--twilio-mps",
        min=0.0,
        max=999_999.0,
        help="Segments per second each Twilio sender sends; later messages wait 'queued' "
        "for their turn, as at Twilio (a US long code sends 1). 0: no limit.",
    ),
    smtp_port: int = typer.Option(
        2525, "--smtp-port", min=0, help="Port of the SMTP sink (0: do not start it)."
    ),
) -> None:
    """Run the Cal.com (/calcom), SavvyCal (/savvycal) and Twilio (/twilio) sandboxes with
    seeded data, and an SMTP sink that records mail."""
    from calflow.sandbox import SandboxConfig
    from calflow.sandbox.server import serve
    from calflow.server.listen import ListenError, listen

    # the sandbox's port is bound before anything is printed: taken, it is one clear
    # error; a taken SMTP port is said at once, and the sandbox runs without the sink
    # (several sandboxes of a test run share the default one)
    sock = listen(host, port)
    if smtp_port:
        try:
            listen(host, smtp_port, "--smtp-port").close()  # the sink binds it at start
        except ListenError as exc:
            typer.echo(f"warning: no SMTP sink: {exc.message}; --smtp-port 0 starts none",
                       err=True)  # fmt: skip
            smtp_port = 0

    config = SandboxConfig(
        seed=seed,
        fail_rate=fail_rate,
        latency_ms=latency,
        rate_limit_per_min=rate_limit,
        api_key=api_key,
        savvycal_token=savvycal_token,
        savvycal_seed=savvycal_seed,
        savvycal_rate_limit_per_min=savvycal_rate_limit,
        twilio_account_sid=twilio_account_sid,
        twilio_auth_token=twilio_auth_token,
        twilio_mps=twilio_mps,
        smtp_host=host,
        smtp_port=smtp_port or None,
    )
    typer.echo(
        f"Twilio base URL: http://{host}:{port}/twilio   (account SID: "
        f"{config.resolved_twilio_account_sid}, auth token: {config.resolved_twilio_auth_token})"
    )
    if twilio_mps:
        typer.echo(f"  each Twilio sender sends {twilio_mps:g} segment(s) per second")
    if smtp_port:
        typer.echo(f"SMTP sink: {host}:{smtp_port}   (mail in /_sandbox/smtp/messages)")
    serve(host, port, config, sock)
