"""Trunk mapping: names to addresses, networks, ``host:port`` or host names."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from sipchain.errors import SipChainError
from sipchain.model import Endpoint, SipMessage

__all__ = ["TrunkMap", "load_trunks"]

TrunkSpec = Mapping[str, Iterable[str]] | str | os.PathLike[str] | None


class TrunkMap:
    """Which trunk an endpoint belongs to.

    Each trunk is named by any mix of: IP addresses (``192.0.2.10``,
    ``2001:db8::1``), networks (``198.51.100.0/24``), ``host:port`` pairs
    (``192.0.2.10:5060``, ``[2001:db8::1]:5061``) and host names
    (``sip.carrier.example``, matched against the host of the Request-URI or
    top Via of the leg's INVITE). The most specific entry wins: ``host:port``,
    then address, then the longest network, then host name.
    """

    def __init__(self, trunks: Mapping[str, Iterable[str]] | None = None) -> None:
        self.hostports: dict[tuple[str, int], str] = {}
        self.addresses: dict[str, str] = {}
        self.networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
        self.hostnames: dict[str, str] = {}
        self.spec: dict[str, tuple[str, ...]] = {}
        for name, entries in sorted((trunks or {}).items()):
            if isinstance(entries, str):
                entries = [entries]
            self.spec[name] = tuple(entries)
            for entry in entries:
                self._add(name, entry.strip())
        self.networks.sort(key=lambda item: -item[0].prefixlen)

    def _add(self, name: str, entry: str) -> None:
        try:
            self.addresses[str(ipaddress.ip_address(entry))] = name
            return
        except ValueError:
            pass
        if "/" in entry:
            try:
                self.networks.append((ipaddress.ip_network(entry, strict=False), name))
                return
            except ValueError as exc:
                raise SipChainError(f"trunk {name}: {entry!r} is not a network ({exc})") from exc
        host, sep, port = entry.rpartition(":")
        if sep and port.isdigit() and host:
            host = host.strip("[]")
            try:
                host = str(ipaddress.ip_address(host))
            except ValueError:
                self.hostnames[f"{host.lower()}:{port}"] = name
                return
            self.hostports[(host, int(port))] = name
            return
        self.hostnames[entry.lower().rstrip(".")] = name

    def __bool__(self) -> bool:
        return bool(self.spec)

    def name_of(self, endpoint: Endpoint | None, invite: SipMessage | None = None, *, remote_is_uas: bool = True) -> str | None:
        """The trunk of ``endpoint`` (or of the INVITE's host names), or ``None``."""
        if endpoint is not None:
            hit = self.hostports.get((endpoint.ip, endpoint.port)) or self.addresses.get(endpoint.ip)
            if hit:
                return hit
            if self.networks:
                try:
                    ip = ipaddress.ip_address(endpoint.ip)
                except ValueError:
                    ip = None
                if ip is not None:
                    for net, name in self.networks:
                        if ip.version == net.version and ip in net:
                            return name
        if self.hostnames and invite is not None:
            host: str | None = None
            port: int | None = None
            if remote_is_uas and invite.request_uri is not None:
                host, port = invite.request_uri.host, invite.request_uri.port
            elif not remote_is_uas and invite.via:
                host, port = invite.via[0].host, invite.via[0].port
            if host:
                host = host.lower().rstrip(".")
                for key in (f"{host}:{port}" if port else "", host):
                    if key in self.hostnames:
                        return self.hostnames[key]
        return None


def load_trunks(trunks: TrunkSpec) -> TrunkMap:
    """A :class:`TrunkMap` from a mapping, or a TOML file (``[trunks]`` table or top level)."""
    if trunks is None:
        return TrunkMap()
    if isinstance(trunks, str | os.PathLike):
        path = Path(trunks)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SipChainError(f"cannot read the trunk file: {exc}", source=str(path)) from exc
        table = data.get("trunks", data)
        if not isinstance(table, dict):
            raise SipChainError("the trunk file needs a [trunks] table of name = [addresses]", source=str(path))
        return TrunkMap({str(k): ([v] if isinstance(v, str) else [str(x) for x in v]) for k, v in table.items()})
    return TrunkMap(trunks)
