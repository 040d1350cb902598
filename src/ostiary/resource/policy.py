"""What a protected MCP endpoint demands, in one frozen value (MCP authorization; RFC 9728).

:class:`ProtectionPolicy` groups every option of
:func:`~ostiary.resource.mcp_sdk.protect_mcp_app`,
:func:`~ostiary.resource.fastmcp_adapter.protect_fastmcp_app` and the gateway that is about
*access* (scopes, mixed auth, DPoP, browsers, streams, the PRM's names) rather than about
*where* (``resource``, ``issuer``) or *what* is served. One value, checked once when it is
built, shared by all three: a contradiction is a :class:`~ostiary.errors.ConfigurationError`
at start-up, never a tool quietly left open.

Two further checks need the deployment and run later: :func:`default_verifier` /
:func:`validate_verifier` (the verifier's issuer and audience are the ones the PRM names) and
:func:`validate_names` (every tool, prompt and resource a scope map names exists; run when
the app starts, after the tools are registered).

This module imports neither the MCP SDK nor FastMCP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ostiary.core.resource_uri import canonical_resource
from ostiary.errors import ConfigurationError, InvalidTargetError
from ostiary.resource.dpop import DPoPOptions
from ostiary.resource.jwt_verifier import JWTVerifier
from ostiary.resource.principal import TokenVerifier

__all__ = [
    "ProtectionPolicy",
    "ServerNames",
    "default_verifier",
    "validate_names",
    "validate_verifier",
]

ScopeMap = Mapping[str, tuple[str, ...]]


def _scope_map(name: str, value: Mapping[str, Sequence[str]]) -> ScopeMap:
    """A read-only copy with tuple values; a bare string value is refused (``"a b"``)."""
    result: dict[str, tuple[str, ...]] = {}
    for key, scopes in value.items():
        if isinstance(scopes, str):
            raise ConfigurationError(f"{name}[{key!r}] must be a list of scopes, not a string")
        result[key] = tuple(scopes)
    return MappingProxyType(result)


def _names(name: str, value: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigurationError(f"{name} must be a list, not the string {value!r}")
    return tuple(value)


@dataclass(frozen=True, kw_only=True)
class ProtectionPolicy:
    """Access rules of one protected MCP endpoint. Lists may be given as lists; they are kept
    as tuples, and scope maps as read-only mappings.

    Attributes:
        required_scopes: Scopes every request needs; also named in 401 challenges.
        tool_scopes: Tool name → scopes it needs (403 ``insufficient_scope`` when missing).
        prompt_scopes: Prompt name → scopes needed to get it.
        resource_scopes: Resource URI or template (``user://notes/{id}``) → scopes needed
            to read it.
        scope_hierarchy: ``{"mcp:write": ["mcp:read"]}``: a broader scope implies narrower.
        scopes_supported: PRM ``scopes_supported``; None: the required and mapped scopes.
        hide_unauthorized_tools: Leave out of ``tools/list`` what the caller cannot call.
        mixed_auth: Let a tokenless client initialize, list tools and call
            ``public_tools``; anything else gets a per-tool challenge. Off (the default),
            every tokenless request gets the 401 challenge, which is what clients that
            decide at connect time whether to log in need.
        public_tools: Tools callable without a token (advertised ``noauth``); needs
            ``mixed_auth``.
        dpop: DPoP-bound tokens (RFC 9449 §7). True: accepted, with an in-process replay
            cache; a :class:`~ostiary.resource.dpop.DPoPOptions` (for the same resource)
            sets the shared replay cache, nonces and whether every 401 advertises ``DPoP``;
            False refuses the scheme.
        cors_origins: Browser origins allowed to call the endpoint (CORS + Origin check).
        allowed_hosts: ``Host`` values accepted; None: the resource's host (and every
            loopback name for a loopback resource).
        dns_rebinding_protection: Check ``Host`` and ``Origin`` (403 on a foreign Origin).
        exempt_paths: Paths served without a token.
        stateless: The endpoint keeps no sessions, so ``GET``/``DELETE`` answer 405. None:
            what the served app says (the SDK's ``stateless_http``), else False.
        max_streams_per_address: Event streams (``GET``) one client address may hold open
            on a stateful endpoint; the next gets 429. 0: no bound.
        resource_name: PRM ``resource_name``.
        resource_documentation: PRM ``resource_documentation``.
        include_root_metadata: Also serve the PRM at ``/.well-known/oauth-protected-resource``.

    Raises:
        ConfigurationError: ``public_tools`` without ``mixed_auth``, a negative stream
            bound, or a list given as a string.

    Example:
        >>> policy = ProtectionPolicy(
        ...     required_scopes=["mcp:read"],
        ...     tool_scopes={"create_note": ["mcp:write"]},
        ...     scope_hierarchy={"mcp:write": ["mcp:read"]},
        ... )
        >>> policy.tool_scopes["create_note"], policy.declared_scopes()
        (('mcp:write',), ('mcp:read', 'mcp:write'))
        >>> ProtectionPolicy(public_tools=["search"])
        Traceback (most recent call last):
        ...
        ostiary.errors.ConfigurationError: public_tools are callable ... only in mixed auth: ...
    """

    required_scopes: Sequence[str] = ()
    tool_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    prompt_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    resource_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    scope_hierarchy: Mapping[str, Sequence[str]] = field(default_factory=dict)
    scopes_supported: Sequence[str] | None = None
    hide_unauthorized_tools: bool = False
    mixed_auth: bool = False
    public_tools: Sequence[str] = ()
    dpop: DPoPOptions | bool = True
    cors_origins: Sequence[str] = ()
    allowed_hosts: Sequence[str] | None = None
    dns_rebinding_protection: bool = True
    exempt_paths: Sequence[str] = ()
    stateless: bool | None = None
    max_streams_per_address: int = 8
    resource_name: str | None = None
    resource_documentation: str | None = None
    include_root_metadata: bool = True

    def __post_init__(self) -> None:
        normalized: dict[str, Any] = {
            "required_scopes": _names("required_scopes", self.required_scopes),
            "public_tools": _names("public_tools", self.public_tools),
            "cors_origins": _names("cors_origins", self.cors_origins),
            "exempt_paths": _names("exempt_paths", self.exempt_paths),
        }
        for name in ("tool_scopes", "prompt_scopes", "resource_scopes", "scope_hierarchy"):
            normalized[name] = _scope_map(name, getattr(self, name))
        for name in ("scopes_supported", "allowed_hosts"):
            value = getattr(self, name)
            normalized[name] = None if value is None else _names(name, value)
        for name, value in normalized.items():
            object.__setattr__(self, name, value)  # frozen: set once, here
        if self.public_tools and not self.mixed_auth:
            raise ConfigurationError(
                "public_tools are callable without a token only in mixed auth: pass "
                "mixed_auth=True (clients then connect without a token), or drop public_tools"
            )
        if self.max_streams_per_address < 0:
            raise ConfigurationError("max_streams_per_address must be 0 (no bound) or more")

    def declared_scopes(self) -> tuple[str, ...]:
        """The PRM ``scopes_supported``: as given, else required, tool, prompt and resource
        scopes in that order, each once."""
        if self.scopes_supported is not None:
            return tuple(self.scopes_supported)
        mapped = (*self.tool_scopes.values(), *self.prompt_scopes.values())
        mapped = (*mapped, *self.resource_scopes.values())
        return tuple(dict.fromkeys((*self.required_scopes, *(s for v in mapped for s in v))))

    def dpop_options(self, resource: str) -> DPoPOptions | None:
        """The DPoP options for ``resource`` (None: the scheme is refused).

        Raises:
            ConfigurationError: ``dpop`` was built for another resource.
        """
        if self.dpop is True:
            return DPoPOptions(resource, advertise=False)
        if self.dpop is False:
            return None
        if _canonical(self.dpop.resource) != _canonical(resource):
            raise ConfigurationError(
                f"dpop is for {self.dpop.resource!r}, but the protected resource is "
                f"{resource!r}: build DPoPOptions with the same resource"
            )
        return self.dpop


@dataclass(frozen=True)
class ServerNames:
    """What an MCP server has, for :func:`validate_names`.

    Attributes:
        tools: Tool names.
        prompts: Prompt names.
        resources: Resource URIs and resource-template URIs.
    """

    tools: frozenset[str]
    prompts: frozenset[str]
    resources: frozenset[str]


def validate_names(policy: ProtectionPolicy, names: ServerNames) -> None:
    """Every tool, prompt and resource the policy names must exist on the server.

    A misspelt key would otherwise leave the real tool with only the endpoint's scopes: a
    tool meant for ``mcp:write`` callable with ``mcp:read``.

    Raises:
        ConfigurationError: Naming each unknown key and listing the known names.

    Example:
        >>> names = ServerNames(frozenset({"add_note", "search"}), frozenset(), frozenset())
        >>> validate_names(ProtectionPolicy(tool_scopes={"add_nte": ["mcp:write"]}), names)
        Traceback (most recent call last):
        ...
        ostiary.errors.ConfigurationError: tool_scopes names 'add_nte', ... add_note, search)
    """
    for kind, keys, known, noun in (
        ("tool_scopes", policy.tool_scopes, names.tools, "tools"),
        ("public_tools", policy.public_tools, names.tools, "tools"),
        ("prompt_scopes", policy.prompt_scopes, names.prompts, "prompts"),
        ("resource_scopes", policy.resource_scopes, names.resources, "resources"),
    ):
        unknown = sorted(set(keys) - known)
        if unknown:
            raise ConfigurationError(
                f"{kind} names {', '.join(map(repr, unknown))}, which the server does not "
                f"have (its {noun}: {', '.join(sorted(known)) or 'none'})"
            )


def _canonical(value: str) -> str:
    try:
        return canonical_resource(value)
    except InvalidTargetError:
        return value  # an audience that is not a URI (an AS's API identifier) stays as is


def default_verifier(resource: str, issuers: Sequence[str]) -> TokenVerifier:
    """The verifier a protected endpoint gets when none is given: RFC 9068 JWTs checked
    against the issuer's JWKS (found through its RFC 8414 metadata on first use), audience
    the canonical ``resource``.

    Raises:
        ConfigurationError: Not exactly one issuer (say which one signs: pass a verifier).

    Example:
        >>> verifier = default_verifier("HTTPS://MCP.example.com/mcp", ["https://as.example"])
        >>> verifier.issuer, verifier.audience, verifier.jwks_uri
        ('https://as.example', 'https://mcp.example.com/mcp', None)
    """
    if len(issuers) != 1:
        raise ConfigurationError(
            f"{len(issuers)} issuers named and no verifier: pass verifier= for the one(s) "
            "whose tokens this resource accepts"
        )
    return JWTVerifier(issuers[0], _canonical(resource))


def validate_verifier(verifier: TokenVerifier, resource: str, issuers: Sequence[str]) -> None:
    """A verifier that states its issuer or audience must agree with the PRM.

    The PRM tells clients which authorization server to ask and which ``resource`` to ask
    for; a verifier expecting another issuer or audience would refuse every token they get.
    Verifiers that do not say (``issuer``/``audience`` attributes absent or None) pass.

    Raises:
        ConfigurationError: The verifier's ``issuer`` is not among ``issuers``, or its
            ``audience`` is not ``resource`` (both compared in canonical form).

    Example:
        >>> verifier = JWTVerifier("https://as.example", "https://other.example/mcp")
        >>> validate_verifier(verifier, "https://mcp.example/mcp", ["https://as.example"])
        Traceback (most recent call last):
        ...
        ostiary.errors.ConfigurationError: the verifier's audience 'https://other.example/mcp' ...
    """
    issuer = getattr(verifier, "issuer", None)
    if isinstance(issuer, str) and issuer not in issuers:
        raise ConfigurationError(
            f"the verifier's issuer {issuer!r} is not the issuer the metadata names "
            f"({', '.join(map(repr, issuers))}): clients would get tokens it refuses"
        )
    audience = getattr(verifier, "audience", None)
    if isinstance(audience, str) and _canonical(audience) != _canonical(resource):
        raise ConfigurationError(
            f"the verifier's audience {audience!r} is not the resource {resource!r}: "
            "tokens issued for this resource would all be refused"
        )
