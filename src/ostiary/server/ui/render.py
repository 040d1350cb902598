"""HTML pages: Jinja2 with autoescape and strict undefined, and the headers every page carries.

Pages run no scripts; the Content-Security-Policy forbids them, forbids framing
(``frame-ancestors 'none'``, clickjacking defence for consent, RFC 9700 §4.16) and restricts form
targets to this server plus, on the consent page, the client's redirect origin (Chromium
applies ``form-action`` to the redirect that follows a form post).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def security_headers(form_targets: tuple[str, ...] = ()) -> dict[str, str]:
    form_action = " ".join(("'self'", *form_targets))
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
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
    **context: Any,
) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=security_headers(form_targets))
