"""``mltrack ui``: serve the web UI on the configured store."""

from __future__ import annotations

import errno
import socket

import click

from mltrack import MLTrackError


@click.command("ui")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1; others need an auth token).")
@click.option("--port", default=None, type=click.IntRange(0, 65535), help="Port to bind (default 5050).")
@click.option("--tracking-uri", default=None, help="MLflow store to show (default: the configured one).")
@click.option("--open/--no-open", "open_browser", default=False, help="Open a browser tab once it is up.")
def ui_command(host: str | None, port: int | None, tracking_uri: str | None, open_browser: bool) -> None:
    """Start the web UI (runs, charts, models, deployments, plugins).

    The token for a non-loopback address comes from MLTRACK_PLUGINS__UI__AUTH_TOKEN or
    auth_token in [tool.mltrack.plugins.ui], never from the command line (where other users
    of the machine could read it); so do session_secret (shared by replicas) and the
    trusted proxy settings.
    """
    import uvicorn

    from mltrack import configure
    from mltrack.extend import plugin_settings
    from mltrack_ui.app import create_app, static_dir
    from mltrack_ui.settings import UISettings

    settings: UISettings = plugin_settings("ui")
    if tracking_uri:
        configure(tracking_uri=tracking_uri)  # deployments and the app then read the same store
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    app = create_app(
        host=bind_host,
        auth_token=token,
        session_secret=settings.session_secret.get_secret_value() if settings.session_secret else None,
        session_max_age_s=settings.session_max_age_s,
        trusted_proxy_user_header=settings.trusted_proxy_user_header,
        trusted_proxies=settings.trusted_proxies,
        refresh_deployments=settings.refresh_deployments,
        cors_origins=settings.cors_origins,
        artifacts_server=settings.artifacts_server,
        write_tracking_uri=settings.write_tracking_uri,
    )
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    # Bind before announcing anything: a busy port is one line with a hint, not a banner
    # followed by uvicorn's traceback.
    listener = _listen(bind_host, bind_port, shown)
    bind_port = listener.getsockname()[1]
    guard = "token" if token else ""
    if settings.trusted_proxy_user_header:
        guard = f"{guard} or {settings.trusted_proxy_user_header}" if guard else settings.trusted_proxy_user_header
    click.echo(f"MLTrack UI on http://{shown}:{bind_port}/ " + (f"({guard} required)" if guard else ""))
    if static_dir() is None:
        click.echo("warning: the front end is not built; only the JSON API is served (run `make ui-build`)", err=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(f"http://{shown}:{bind_port}/",)).start()
    # proxy_headers=False: uvicorn would otherwise replace the peer address with X-Forwarded-For
    # from 127.0.0.1, and the trusted-proxy check must see the connection's real peer.
    uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=False)).run(sockets=[listener])


def _listen(host: str, port: int, shown: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise MLTrackError(
                f"cannot start the UI on {shown}:{port}: the port is already in use",
                hint=f"pick another port with --port (e.g. --port {port + 1 if port < 65535 else 5051}), "
                "or stop what listens there",
            ) from None
        raise MLTrackError(
            f"cannot start the UI on {shown}:{port}: {exc.strerror or exc}",
            hint="check --host (an address of this machine) and --port",
        ) from None
    return listener
