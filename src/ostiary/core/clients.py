"""Client lookup across registration kinds (RFC 7591, pre-registration, CIMD draft -00).

A URL-shaped ``client_id`` is a Client ID Metadata Document and is resolved (fetched,
validated, cached) through the injected resolver; any other id is looked up in storage. A
client an operator disabled is refused everywhere as if it did not exist.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from ostiary.core.client_id_metadata import is_client_id_metadata_url
from ostiary.core.context import ServerContext
from ostiary.core.models import Client
from ostiary.core.urls import split_url
from ostiary.errors import InvalidClientMetadataError

#: Longest logo URL a page renders.
MAX_LOGO_URI_LENGTH = 2048


async def load_client(ctx: ServerContext, client_id: str) -> Client | None:
    """The client for ``client_id``, or None when unknown.

    Raises:
        InvalidClientMetadataError: a metadata document could not be fetched or is invalid.
    """
    features = ctx.settings.features
    if is_client_id_metadata_url(client_id):
        if not features.client_id_metadata_documents or ctx.resolver is None:
            return None
        # A metadata-document client lives in the resolver's cache; storage holds only an
        # operator's block entry for it (``ostiary clients disable <url>``).
        blocked = await ctx.storage.get_client(ctx.tenant, client_id)
        if blocked is not None and blocked.disabled:
            ctx.audit("client.disabled_refused", client_id=client_id)
            return None
        try:
            client: Client | None = await ctx.resolver.resolve(
                client_id,
                tenant_id=ctx.tenant,
                now=ctx.clock(),
                supported_scopes=ctx.settings.scopes.supported,
            )
        except InvalidClientMetadataError as exc:
            # The caller sees only the description; the operator sees why (OAuthError.detail).
            ctx.audit(
                "client_metadata.refused",
                client_id=client_id[:200],
                reason=exc.description,
                detail=exc.detail,
            )
            raise
    else:
        client = await stored_client(ctx, client_id)
    if client is not None and client.disabled:
        # As if unknown: no authorization page, no token, no introspection for it.
        ctx.audit("client.disabled_refused", client_id=client_id)
        return None
    return client


async def stored_client(ctx: ServerContext, client_id: str) -> Client | None:
    """The stored client, reused for ``security.client_cache_seconds`` within this process.

    Only records that exist are kept: a client registered a moment ago on another process is
    found at once. A change made elsewhere (``ostiary clients disable``, an RFC 7592 update
    or delete) reaches this process within the cache time; one made here at once, through
    :func:`forget_client`.
    """
    now = ctx.clock()
    client = ctx.clients.get(client_id, now)
    if client is None:
        client = await ctx.storage.get_client(ctx.tenant, client_id)
        if client is not None:
            ctx.clients.put(client_id, client, now + ctx.settings.security.client_cache_seconds)
    return client


def forget_client(ctx: ServerContext, client_id: str) -> None:
    """Drop this process's copy after changing or deleting the client."""
    ctx.clients.pop(client_id)


def registered_scope_is_ceiling(client: Client) -> bool:
    """Whether the client's registered ``scope`` limits what it may request.

    Only for clients an operator registered. A self-registered client (RFC 7591 or a metadata
    document) chose its ``scope`` itself, so it is no grant of authority, and MCP clients
    register with the first challenged scope and later step up to more (MCP authorization,
    "Step-Up Authorization Flow"); the user's consent is what bounds them.
    """
    return client.source == "static"


def is_confidential(client: Client) -> bool:
    """Confidential clients authenticate at the token endpoint (OAuth 2.1 §2.1)."""
    return client.token_endpoint_auth_method != "none"


def displayed_logo(client: Client) -> str | None:
    """The ``logo_uri`` a page may render as an image for this client, or None.

    The user's browser loads the image when the page opens, so the address is one the
    registrant chose, perhaps inside the user's network (RFC 7591 §5: its content is
    unverified). Only an operator-registered client's logo is shown. A metadata-document
    client's logo is shown when it lives on the client_id's own origin: the host the page
    names, whose document this server fetched through the SSRF guard. A dynamically
    registered client proves nothing, so the page shows its initial instead. Only https
    (no mixed content, no ``javascript:``).
    """
    logo = client.logo_uri
    if not logo or len(logo) > MAX_LOGO_URI_LENGTH or not logo.startswith("https://"):
        return None
    if client.source == "static":
        return logo
    if client.source == "cimd":
        here, home = split_url(logo), split_url(client.client_id)
        if here is not None and home is not None and _origin(here) == _origin(home):
            return logo
    return None


def _origin(parts: SplitResult) -> tuple[str | None, int]:
    return parts.hostname, parts.port or 443
