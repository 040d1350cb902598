"""Client ID Metadata Documents end to end (draft-ietf-oauth-client-id-metadata-document-00).

A real HTTPS server on 127.0.0.1 serves the documents, with a certificate from a throwaway CA
made here. The authorization server's resolver is the production one (SSRF-guarded
``SafeFetcher`` + ``ClientMetadataResolver``) built from the settings, trusting that CA and
resolving the document host name to 127.0.0.1 (``security.allow_private_fetch=True``). The
SSRF cases use the server's default fetchers with private addresses forbidden.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ostiary.core.context import MetadataResolver
from ostiary.core.models import Client
from ostiary.core.passwords import INSECURE_TEST
from ostiary.core.users import new_user
from ostiary.net.cimd import METADATA_UNAVAILABLE, ClientMetadataResolver
from ostiary.net.fetch import FetchPolicy, SafeFetcher
from ostiary.server.app import create_authorization_server, default_fetchers, startup
from ostiary.settings import Settings
from ostiary.storage import open_storage
from tests.helpers.browserless import authorize
from tests.helpers.context import build_context
from tests.integration.conftest import (
    AS,
    ISSUER,
    PASSWORD,
    REDIRECT,
    RESOURCE,
    USERNAME,
    Clock,
    pkce_pair,
)
from tests.integration.test_hostile_helpers import assert_error_page, guard, snapshot

HOST = "client.ostiary.test"


# --- a throwaway CA and a real HTTPS server ---------------------------------------------------


@dataclass
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_pem), str(self.key_pem))
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ostiary test CA"))
        .issuer_name(_name("ostiary test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pki.ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Sent as is instead of a well-formed response (hostile servers).
    raw: bytes | None = None
    #: Seconds to wait before answering (slow servers).
    delay: float = 0.0


@dataclass
class DocumentServer:
    """A minimal HTTPS/1.1 server: path -> canned reply, counting requests per path."""

    port: int = 0
    routes: dict[str, Reply] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"https://{HOST}:{self.port}{path}"

    def serve_json(self, path: str, document: object, **headers: str) -> str:
        self.routes[path] = Reply(
            200, json.dumps(document).encode(), {"Content-Type": "application/json", **headers}
        )
        return self.url(path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.split()
            path = parts[1].decode() if len(parts) > 1 else "/"
            self.hits[path] = self.hits.get(path, 0) + 1
            reply = self.routes.get(path, Reply(404, b"not found", {"Content-Type": "text/plain"}))
            await asyncio.sleep(reply.delay)
            if reply.raw is not None:
                writer.write(reply.raw)
            else:
                head = [f"HTTP/1.1 {reply.status} X"]
                if "Content-Length" not in reply.headers:
                    head.append(f"Content-Length: {len(reply.body)}")
                head += [f"{k}: {v}" for k, v in reply.headers.items()]
                head.append("Connection: close")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


@asynccontextmanager
async def https_server(pki: Pki) -> AsyncIterator[DocumentServer]:
    documents = DocumentServer()
    server = await asyncio.start_server(documents.handle, "127.0.0.1", 0, ssl=pki.server_context())
    documents.port = server.sockets[0].getsockname()[1]
    try:
        yield documents
    finally:
        server.close()
        await server.wait_closed()


async def _to_loopback(host: str, port: int) -> Sequence[str]:
    assert host == HOST, host
    return ["127.0.0.1"]


def trusting_resolver(settings: Settings, pki: Pki) -> MetadataResolver:
    """The production resolver, built from the settings, trusting the test CA."""
    security = settings.security
    policy = FetchPolicy(
        allow_private=security.allow_private_fetch,
        timeout_seconds=security.fetch_timeout_seconds,
        max_bytes=security.fetch_max_bytes,
        allowed_domains=security.cimd_allowed_domains,
    )
    fetcher = SafeFetcher(policy, ssl_context=pki.client_context(), resolve_host=_to_loopback)
    return ClientMetadataResolver(fetcher)


@asynccontextmanager
async def cimd_server(settings: Settings, resolver: MetadataResolver) -> AsyncIterator[AS]:
    clock = Clock(int(time.time()))
    ctx = build_context(settings, open_storage(settings), clock=clock, resolver=resolver)
    app = create_authorization_server(settings, context=ctx)
    await startup(ctx)
    await ctx.storage.save_user(
        await new_user(settings.storage.tenant, USERNAME, PASSWORD, clock(), hashing=INSECURE_TEST)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield guard(AS(http, ctx, clock, settings))
    await ctx.storage.close()


@dataclass
class World:
    server: AS
    documents: DocumentServer


@pytest.fixture
async def world(settings_factory: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[World]:
    settings = settings_factory(
        issuer=ISSUER,
        storage={"url": f"sqlite:///{tmp_path}/as.db"},
        security={"allow_private_fetch": True, "fetch_timeout_seconds": 3},
    )
    pki = make_pki(tmp_path)
    async with (
        https_server(pki) as documents,
        cimd_server(settings, trusting_resolver(settings, pki)) as server,
    ):
        yield World(server, documents)


def _document(client_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Metadata Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "application_type": "native",
        **extra,
    }


def _authorize_url(server: AS, client_id: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    return server.authorize_url(client_id, challenge), verifier


# --- the happy path ---------------------------------------------------------------------------


async def test_authorize_and_token_with_a_url_client_id(world: World) -> None:
    server, documents = world.server, world.documents
    client_id = documents.url("/oauth/client.json")
    documents.serve_json("/oauth/client.json", _document(client_id))
    url, verifier = _authorize_url(server, client_id)
    location = await authorize(server.http, url, username=USERNAME, password=PASSWORD)
    assert location.startswith(REDIRECT)
    query = parse_qs(urlsplit(location).query)
    assert query["iss"] == [ISSUER]
    assert query["state"] == ["st4te"]

    response = await server.http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client_id,
            "resource": RESOURCE,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    refreshed = await server.http.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    snap = await snapshot(server)
    assert snap.stats.clients == 0  # a CIMD client is resolved, never registered
    assert snap.stats.live_grants == 1
    assert snap.grants[0].client_id == client_id
    # The document was fetched once and then served from the resolver's cache.
    assert documents.hits["/oauth/client.json"] == 1


async def test_a_disabled_document_client_is_refused_without_a_fetch(world: World) -> None:
    """``ostiary clients disable <url>`` stores a block entry, consulted before any fetch."""
    server, documents = world.server, world.documents
    client_id = documents.url("/oauth/blocked.json")
    documents.serve_json("/oauth/blocked.json", _document(client_id))
    tenant = server.settings.storage.tenant
    blocked = Client(tenant, client_id, redirect_uris=(), source="cimd", disabled=True)
    await server.ctx.storage.save_client(blocked)

    url, _verifier = _authorize_url(server, client_id)
    response = await server.http.get(url)

    assert_error_page(response, "invalid_request", "unknown client_id")
    assert documents.hits.get("/oauth/blocked.json", 0) == 0


async def test_consent_page_names_the_document_client(world: World) -> None:
    server, documents = world.server, world.documents
    client_id = documents.serve_json("/c.json", {})
    documents.serve_json("/c.json", _document(client_id, client_name="Doc <b>App</b>"))
    url, _verifier = _authorize_url(server, client_id)
    start = await server.http.get(url)
    page = await server.http.get(start.headers["location"])
    assert "Doc &lt;b&gt;App&lt;/b&gt;" in page.text


# --- documents that must be refused: error page, never a redirect, nothing stored -------------


def audit_log(server: AS) -> list[dict[str, Any]]:
    """Every audit record the server emits from now on."""
    records: list[dict[str, Any]] = []
    server.ctx.audit.subscribe(lambda _event, record: records.append(record))
    return records


def refusals(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(description, detail)`` of each audited metadata-document refusal."""
    return [(r["reason"], r["detail"]) for r in records if r["event"] == "client_metadata.refused"]


async def _refused(world: World, client_id: str, description: str) -> None:
    server = world.server
    before = await snapshot(server)
    url, _verifier = _authorize_url(server, client_id)
    response = await server.http.get(url)
    assert_error_page(response, "invalid_request", description)
    assert await snapshot(server) == before


async def _unreachable(world: World, client_id: str, reason: str) -> None:
    """Refused with the one public description; ``reason`` only in the audit log."""
    records = audit_log(world.server)
    await _refused(world, client_id, METADATA_UNAVAILABLE)
    [(description, detail)] = refusals(records)
    assert description == METADATA_UNAVAILABLE
    assert detail.startswith(f"fetching {client_id!r}: {reason}"), detail


async def test_document_client_id_differs_from_its_url(world: World) -> None:
    documents = world.documents
    client_id = documents.url("/impostor.json")
    documents.serve_json("/impostor.json", _document(documents.url("/someone-else.json")))
    await _refused(
        world, client_id, "the client metadata document client_id does not match its URL"
    )


async def test_redirect_uri_not_in_the_document(world: World) -> None:
    documents = world.documents
    client_id = documents.url("/other-redirect.json")
    documents.serve_json(
        "/other-redirect.json", _document(client_id, redirect_uris=["https://app.example/cb"])
    )
    await _refused(world, client_id, "redirect_uri is not registered for this client")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            Reply(404, b"nope", {"Content-Type": "text/plain"}),
            "the server answered HTTP 404",
        ),
        (
            Reply(302, b"", {"Location": "https://127.0.0.1/elsewhere"}),
            "redirects are not followed",
        ),
        (
            Reply(200, b"<html></html>", {"Content-Type": "text/html"}),
            "the response is not JSON",
        ),
        (
            Reply(200, b"{not json", {"Content-Type": "application/json"}),
            "the response is not valid JSON",
        ),
        (
            Reply(200, b"[" + b" " * 9000 + b"]", {"Content-Type": "application/json"}),
            "the response is too large",
        ),
        (
            Reply(200, b"{}", {"Content-Type": "application/json", "Content-Length": "99999999"}),
            "the response is too large",
        ),
        (
            Reply(200, b"{}", {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
            "compressed responses are not accepted",
        ),
        (
            Reply(raw=b"NOT HTTP AT ALL\r\n\r\n"),
            "the request failed",
        ),
        (
            Reply(raw=b""),
            "the request failed",
        ),
        (
            Reply(
                raw=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 500\r\n\r\n{}"
            ),
            "the request failed",
        ),
    ],
)
async def test_unusable_responses(world: World, reply: Reply, reason: str) -> None:
    world.documents.routes["/bad.json"] = reply
    await _unreachable(world, world.documents.url("/bad.json"), reason)


async def test_a_document_that_is_not_an_object(world: World) -> None:
    """What the document says is no secret: its problems are described to the caller."""
    world.documents.routes["/bad.json"] = Reply(200, b"[]", {"Content-Type": "application/json"})
    await _refused(
        world,
        world.documents.url("/bad.json"),
        "the client metadata document must be a JSON object",
    )


@pytest.mark.parametrize(
    ("extra", "description"),
    [
        (
            {"client_secret": "s3cret"},
            "the client metadata document must not contain a client_secret",
        ),
        (
            {"token_endpoint_auth_method": "client_secret_basic"},
            "the client metadata document is invalid: "
            "unsupported token_endpoint_auth_method: client_secret_basic",
        ),
        ({"redirect_uris": []}, "the client metadata document must include redirect_uris"),
        (
            {"redirect_uris": ["javascript:alert(1)"]},
            "the client metadata document is invalid: "
            "redirect_uri scheme javascript is not allowed",
        ),
    ],
)
async def test_invalid_documents(world: World, extra: dict[str, Any], description: str) -> None:
    documents = world.documents
    client_id = documents.url("/invalid.json")
    documents.serve_json("/invalid.json", _document(client_id, **extra))
    await _refused(world, client_id, description)


async def test_slow_document_server_times_out(world: World) -> None:
    timeout = world.server.settings.security.fetch_timeout_seconds
    world.documents.routes["/slow.json"] = Reply(delay=timeout + 2)
    started = time.monotonic()
    await _unreachable(world, world.documents.url("/slow.json"), "the request timed out")
    assert time.monotonic() - started < timeout + 1.5


async def test_token_endpoint_refuses_a_broken_document(world: World) -> None:
    server, documents = world.server, world.documents
    client_id = documents.url("/gone.json")
    before = await snapshot(server)
    records = audit_log(server)
    response = await server.http.post(
        "/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": client_id},
    )
    assert response.status_code == 401
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "error": "invalid_client",
        "error_description": METADATA_UNAVAILABLE,
    }
    assert refusals(records) == [
        (METADATA_UNAVAILABLE, f"fetching {client_id!r}: the server answered HTTP 404")
    ]
    assert await snapshot(server) == before


async def test_untrusted_certificate_is_refused(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """TLS is verified: the same server, without trusting its CA, is refused."""
    settings = settings_factory(issuer=ISSUER, security={"allow_private_fetch": True})
    pki = make_pki(tmp_path)
    system_trust = ClientMetadataResolver(
        SafeFetcher(FetchPolicy(allow_private=True), resolve_host=_to_loopback)
    )
    async with https_server(pki) as documents, cimd_server(settings, system_trust) as server:
        client_id = documents.url("/client.json")
        documents.serve_json("/client.json", _document(client_id))
        url, _verifier = _authorize_url(server, client_id)
        response = await server.http.get(url)
        assert_error_page(response, "invalid_request", METADATA_UNAVAILABLE)
        assert documents.hits.get("/client.json", 0) == 0


# --- SSRF: private targets are refused before any connection ----------------------------------


@pytest.fixture
async def guarded(settings_factory: Callable[..., Settings]) -> AsyncIterator[AS]:
    """The server's default fetchers, private addresses forbidden (the production default)."""
    settings = settings_factory(issuer=ISSUER)
    assert settings.security.allow_private_fetch is False
    resolver, _jwks = default_fetchers(settings)
    async with cimd_server(settings, resolver) as server:
        yield server


@pytest.mark.parametrize(
    "client_id",
    [
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data/client.json",
        "https://127.0.0.1:8000/client.json",
        "https://[::1]/client.json",
        "https://[::ffff:10.0.0.1]/client.json",
        "https://100.64.0.1/client.json",
        "https://localhost/client.json",
    ],
)
async def test_ssrf_targets_are_refused_quickly(guarded: AS, client_id: str) -> None:
    before = await snapshot(guarded)
    records = audit_log(guarded)
    url, _verifier = _authorize_url(guarded, client_id)
    started = time.monotonic()
    response = await guarded.http.get(url)
    assert time.monotonic() - started < 1.0
    assert_error_page(response, "invalid_request", METADATA_UNAVAILABLE)
    assert "non-public" not in response.text
    assert refusals(records) == [
        (
            METADATA_UNAVAILABLE,
            f"fetching {client_id!r}: the host resolves to a non-public address",
        )
    ]
    assert await snapshot(guarded) == before


async def test_private_and_unresolvable_hosts_look_the_same(
    settings_factory: Callable[..., Settings],
) -> None:
    """An anonymous caller cannot tell from the answer whether a name resolves to a private
    address or does not resolve at all; the audit log can."""
    answers = {"intranet.example.com": ["10.1.2.3"], "nowhere.example.com": []}

    async def resolve_host(host: str, _port: int) -> list[str]:
        if not answers[host]:
            raise OSError("Name or service not known")
        return answers[host]

    settings = settings_factory(issuer=ISSUER)
    resolver = ClientMetadataResolver(SafeFetcher(FetchPolicy(), resolve_host=resolve_host))
    async with cimd_server(settings, resolver) as server:
        records = audit_log(server)
        pages = []
        for host in answers:
            url, _verifier = _authorize_url(server, f"https://{host}/client.json")
            response = await server.http.get(url)
            assert_error_page(response, "invalid_request", METADATA_UNAVAILABLE)
            pages.append((response.status_code, _main(response.text)))
    assert pages[0] == pages[1]
    assert refusals(records) == [
        (
            METADATA_UNAVAILABLE,
            "fetching 'https://intranet.example.com/client.json': "
            "the host resolves to a non-public address",
        ),
        (
            METADATA_UNAVAILABLE,
            "fetching 'https://nowhere.example.com/client.json': "
            "the host name could not be resolved",
        ),
    ]


def _main(page: str) -> str:
    return page.split('<main id="main"')[1]


async def test_http_client_id_is_not_a_metadata_url(guarded: AS) -> None:
    url, _verifier = _authorize_url(guarded, "http://169.254.169.254/latest/meta-data/")
    response = await guarded.http.get(url)
    assert_error_page(response, "invalid_request", "unknown client_id")
