"""Loopback redirect listener and paste-the-code fallback."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from ostiary.client.authorization import CallbackResult
from ostiary.client.callback import LoopbackCallback, PasteCallback, open_in_browser, parse_pasted
from ostiary.errors import AuthorizationFlowError

AUTH_URL = "https://as.example/authorize?client_id=c&state=st8&response_type=code"


async def test_loopback_receives_the_redirect() -> None:
    responses: list[httpx.Response] = []
    tasks: list[asyncio.Task[None]] = []

    async with LoopbackCallback(timeout_seconds=5, opener=lambda url: True) as callback:
        redirect = callback.redirect_uri

        async def browser() -> None:
            async with httpx.AsyncClient() as http:
                responses.append(await http.get(f"{redirect}/../favicon.ico"))
                responses.append(
                    await http.get(f"{redirect}?code=abc&state=st8&iss=https%3A%2F%2Fas")
                )

        def opener(url: str) -> bool:
            tasks.append(asyncio.get_running_loop().create_task(browser()))
            return True

        callback.opener = opener
        result = await callback(AUTH_URL)
        await tasks[0]

    assert redirect.startswith("http://127.0.0.1:")
    assert redirect.endswith("/callback")
    assert result == CallbackResult(
        code="abc",
        state="st8",
        iss="https://as",
        full_query={"code": "abc", "state": "st8", "iss": "https://as"},
    )
    assert [r.status_code for r in responses] == [404, 200]
    assert responses[1].headers["cache-control"] == "no-store"


async def test_loopback_times_out_with_a_clear_error() -> None:
    async with LoopbackCallback(timeout_seconds=0.05, opener=lambda url: False) as callback:
        with pytest.raises(AuthorizationFlowError) as caught:
            await callback(AUTH_URL)
    assert (
        str(caught.value) == "no authorization response within 0 s; run the command again to retry"
    )


def test_loopback_redirect_uri_needs_start() -> None:
    with pytest.raises(RuntimeError):
        _ = LoopbackCallback().redirect_uri


async def test_paste_accepts_the_full_redirect_url() -> None:
    lines: list[str] = []
    callback = PasteCallback(
        read_line=lambda: "http://127.0.0.1/callback?code=c1&state=st8\n", write=lines.append
    )
    result = await callback(AUTH_URL)
    assert (result.code, result.state, result.iss) == ("c1", "st8", None)
    assert lines[0] == f"Open this URL in a browser and approve access:\n\n  {AUTH_URL}\n"


async def test_paste_times_out() -> None:
    def slow() -> str:
        time.sleep(0.5)
        return "late"

    callback = PasteCallback(timeout_seconds=0.05, read_line=slow, write=lambda _: None)
    with pytest.raises(AuthorizationFlowError) as caught:
        await callback(AUTH_URL)
    assert str(caught.value) == "no authorization code pasted within 0 s"


def test_bare_code_takes_state_from_the_authorization_url() -> None:
    assert parse_pasted("  c0de \n", AUTH_URL) == CallbackResult(
        code="c0de", state="st8", iss=None, full_query={"code": "c0de"}
    )


def test_empty_paste_is_an_error() -> None:
    with pytest.raises(AuthorizationFlowError):
        parse_pasted("\n", AUTH_URL)


def test_non_http_urls_are_never_opened() -> None:
    with pytest.raises(AuthorizationFlowError) as caught:
        open_in_browser("javascript:alert(1)")
    assert str(caught.value) == "refusing to open a non-http(s) URL: 'javascript:alert(1)'"
