"""Which clients a source follows: one client, however many names it has.

A Meraki client has an id (``k74272e``) and a MAC, Meraki's API takes either
in a path, and a source may list a client under both. Its events carry
neither, so the events fetched under each name would differ only in the
identifier the worker put on them, and de-duplication by content could not
tell they are the same. So the worker asks Meraki once who each name is
(``GET /networks/{network}/clients/{client}``: its ``id`` and ``mac``), keeps
the answer (``sync_client_identities``), follows each distinct client once,
and puts both identifiers on its events. Mojo follows clients by MAC: names
are the same client when their MACs are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from connlog.api.v1 import connection_event_pb2 as pb
from connlog.core.identifiers import normalise_mac
from connlog.store.sync import ClientIdentity


@dataclass
class FollowedClient:
    """One client a source follows."""

    name: str  # its checkpoint's key: the first of its names the source lists
    names: list[str] = field(default_factory=list)  # every name the source lists for it, in order
    client_id: str = ""  # the vendor's client id, if known
    mac: str = ""  # aa:bb:cc:dd:ee:ff, if known

    @property
    def vendor_name(self) -> str:
        """How to name it to the vendor."""
        return self.client_id or self.mac or self.name


def _identity(vendor: int, name: str, known: ClientIdentity | None) -> tuple[str, str]:
    if known is not None:
        return known.client_id, normalise_mac(known.mac_address) or ""
    mac = normalise_mac(name) or ""
    return ("" if mac or vendor == pb.VENDOR_MOJO else name), mac


def follow(vendor: int, names: Iterable[str], identities: dict[str, ClientIdentity]) -> list[FollowedClient]:
    """The distinct clients behind a source's client names (in the order the
    source first names them). Names are one client when they share a client
    id or a MAC, as the vendor answered (``identities``) or, for a name it
    did not answer for, as the name reads (a MAC, or else an id)."""
    names = list(names)
    clients: list[FollowedClient] = []
    owner: dict[tuple[str, str], FollowedClient] = {}  # ("id" | "mac", value) -> its client
    for name in names:
        client_id, mac = _identity(vendor, name, identities.get(name))
        keys = [key for key in (("id", client_id), ("mac", mac)) if key[1]] or [("name", name)]
        matches: list[FollowedClient] = []
        for key in keys:
            found = owner.get(key)
            if found is not None and all(found is not m for m in matches):
                matches.append(found)
        if not matches:
            client = FollowedClient(name)
            clients.append(client)
        else:  # one client, or several until now that this name joins
            matches.sort(key=lambda c: next(i for i, known in enumerate(clients) if known is c))
            client = matches[0]
            for other in matches[1:]:
                client.names += other.names
                client.client_id = client.client_id or other.client_id
                client.mac = client.mac or other.mac
                clients.remove(other)
        if name not in client.names:
            client.names.append(name)
        client.client_id = client.client_id or client_id
        client.mac = client.mac or mac
        for key in [("id", client.client_id), ("mac", client.mac), *(("name", n) for n in client.names)]:
            if key[1]:
                owner[key] = client
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    for client in clients:
        client.names.sort(key=order.__getitem__)
        client.name = client.names[0]
    return clients
