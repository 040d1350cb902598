"""HTML pages: Jinja2 with autoescape and strict undefined, and the headers every page carries.

Pages run no scripts (the operator console's charts excepted: script files from this server
only) and carry no inline styles; the Content-Security-Policy forbids both,
forbids framing (``frame-ancestors 'none'``, clickjacking defence for consent, RFC 9700 §4.16)
and restricts form targets to this server plus, on the consent page, the client's redirect
origin (Chromium applies ``form-action`` to the redirect that follows a form post). Branding
(``ui`` settings) reaches the pages as template variables and as a small generated stylesheet,
``theme.css``, so the accent colour needs no inline style.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ostiary.server.responses import Endpoint
from ostiary.settings import Settings, UiSettings

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Branding:
    """What every page shows of the deployment: name, logo and where its assets live."""

    name: str
    logo_url: str | None
    support_url: str | None
    static_base: str
    account_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Branding:
        ui = settings.ui
        return cls(
            name=ui.product_name,
            logo_url=ui.logo_url,
            support_url=ui.support_url,
            static_base=f"{settings.issuer_path}/static",
            account_url=f"{settings.issuer}/account",
        )


def security_headers(
    form_targets: tuple[str, ...] = (), *, scripts: bool = False
) -> dict[str, str]:
    """The page headers; ``scripts`` lets the page load this server's own script files and
    fetch from it (the operator console's charts), never inline script."""
    form_action = " ".join(("'self'", *form_targets))
    script = "script-src 'self'; connect-src 'self'; " if scripts else ""
    csp = (
        f"default-src 'none'; {script}style-src 'self'; img-src 'self' https: data:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def render_page(
    template: str,
    *,
    status_code: int = 200,
    form_targets: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
    scripts: bool = False,
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    all_headers = security_headers(form_targets, scripts=scripts)
    all_headers.update(headers or {})
    return HTMLResponse(html, status_code=status_code, headers=all_headers)


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(hex_color: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _shade(hex_color: str, factor: float) -> str:
    r, g, b = (int(int(hex_color[i : i + 2], 16) * factor) for i in (1, 3, 5))
    return f"#{r:02x}{g:02x}{b:02x}"


def theme_css(ui: UiSettings) -> str:
    """The stylesheet that carries the configured accent colour.

    Text on the accent is white or near-black, whichever contrasts more (WCAG 1.4.3); links
    use the accent darkened until it reads on white at 4.5:1.
    """
    accent = ui.accent_color.lower()
    on_accent = "#ffffff" if contrast_ratio(accent, "#ffffff") >= 4.5 else "#111318"
    link = accent
    while contrast_ratio(link, "#ffffff") < 4.5:
        link = _shade(link, 0.9)
    return (
        ":root {\n"
        f"  --accent: {accent};\n"
        f"  --accent-strong: {_shade(accent, 0.85)};\n"
        f"  --on-accent: {on_accent};\n"
        f"  --link: {link};\n"
        "}\n"
    )


def theme_endpoint(settings: Settings) -> Endpoint:
    css = theme_css(settings.ui)

    async def theme(request: Request) -> Response:
        return Response(
            css,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return theme
