"""Guest agent network interfaces and the choice of a VM's usable addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._exceptions import InvalidInputError
from ._values import to_int, to_list, to_str

AddressFamily = Literal["ipv4", "ipv6"]

# Interfaces that container runtimes, bridges and VPNs create inside a guest.
# Their addresses rank after those of other interfaces when a primary address
# is chosen, because they are rarely how the VM is reached from outside.
_VIRTUAL_PREFIXES = (
    "docker",
    "br-",
    "veth",
    "virbr",
    "cni",
    "flannel",
    "cali",
    "vxlan",
    "kube",
    "podman",
    "lxc",
)


@dataclass(frozen=True, slots=True)
class IpAddress:
    """One address the agent reported. A ``%zone`` suffix (``fe80::1%5``) is split off into ``zone``."""

    address: str
    prefix: int | None
    family: AddressFamily
    zone: str | None = None

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> IpAddress | None:
        """Build from one ``ip-addresses`` entry; None when the address cannot be parsed."""
        text = to_str(entry.get("ip-address")) or ""
        address, percent, zone = text.partition("%")
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        family: AddressFamily = "ipv6" if parsed.version == 6 else "ipv4"
        return cls(str(parsed), to_int(entry.get("prefix")), family, zone if percent else None)

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address as an ``ipaddress`` object, without the zone."""
        return ipaddress.ip_address(self.address)

    @property
    def is_loopback(self) -> bool:
        """True for 127.0.0.0/8 and ::1, whatever the interface is called."""
        return self.ip.is_loopback

    @property
    def is_link_local(self) -> bool:
        """True for 169.254.0.0/16 and fe80::/10."""
        return self.ip.is_link_local

    def __str__(self) -> str:
        return self.address if self.prefix is None else f"{self.address}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class AgentInterface:
    """One network interface inside the guest. ``addresses`` is empty when the agent listed none."""

    name: str
    mac: str | None
    addresses: tuple[IpAddress, ...]
    statistics: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> AgentInterface:
        """Build from one entry of ``network-get-interfaces``; ``ip-addresses`` may be absent."""
        entries = to_list(entry.get("ip-addresses"))
        addresses = (IpAddress.from_api(item) for item in entries if isinstance(item, Mapping))
        mac = to_str(entry.get("hardware-address"))
        statistics = entry.get("statistics")
        return cls(
            name=to_str(entry.get("name")) or "",
            mac=mac.lower() if mac else None,
            addresses=tuple(address for address in addresses if address is not None),
            statistics=statistics if isinstance(statistics, Mapping) else {},
        )

    @property
    def is_virtual(self) -> bool:
        """True for interfaces that container runtimes and bridges create (docker0, veth..., br-...)."""
        return self.name.lower().startswith(_VIRTUAL_PREFIXES)


@dataclass(frozen=True, slots=True)
class GuestNetwork:
    """Every interface the guest agent reported for one VM."""

    vmid: int
    node: str
    interfaces: tuple[AgentInterface, ...]

    @classmethod
    def from_api(cls, data: Any, *, vmid: int, node: str) -> GuestNetwork:
        """Build from the ``data`` of ``agent/network-get-interfaces``: ``{"result": [...]}``."""
        result = data.get("result") if isinstance(data, Mapping) else data
        entries = result if isinstance(result, list) else []
        interfaces = tuple(AgentInterface.from_api(entry) for entry in entries if isinstance(entry, Mapping))
        return cls(vmid, node, interfaces)

    @classmethod
    def from_lxc(cls, data: Any, *, vmid: int, node: str) -> GuestNetwork:
        """Build from the ``data`` of ``/nodes/{node}/lxc/{vmid}/interfaces``.

        PVE 8.1 and later send ``ip-addresses`` as the agent does; older releases
        send only ``inet`` and ``inet6`` as ``address/prefix`` text.
        """
        entries = data if isinstance(data, list) else []
        interfaces = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            agent_form = dict(entry)
            if "ip-addresses" not in agent_form:
                cidrs = [str(entry[key]) for key in ("inet", "inet6") if entry.get(key)]
                pairs = (cidr.partition("/") for text in cidrs for cidr in text.split())
                agent_form["ip-addresses"] = [{"ip-address": address, "prefix": prefix} for address, _, prefix in pairs]
            if "hardware-address" not in agent_form and entry.get("hwaddr"):
                agent_form["hardware-address"] = entry["hwaddr"]
            interfaces.append(AgentInterface.from_api(agent_form))
        return cls(vmid, node, tuple(interfaces))

    def usable_addresses(
        self,
        *,
        include_link_local: bool = False,
        interface: str | None = None,
        mac: str | None = None,
        family: AddressFamily | None = None,
    ) -> list[tuple[AgentInterface, IpAddress]]:
        """List (interface, address) pairs that can reach the VM.

        Loopback addresses are dropped by address, not by interface name.
        Link-local addresses are dropped unless ``include_link_local``. Select
        one interface by ``interface`` name or by ``mac`` (any case).
        """
        if family not in (None, "ipv4", "ipv6"):
            raise InvalidInputError(f"address family {family!r} is invalid; use 'ipv4', 'ipv6' or None for both")
        wanted_mac = mac.lower() if mac else None
        pairs = []
        for nic in self.interfaces:
            if interface is not None and nic.name != interface:
                continue
            if wanted_mac is not None and nic.mac != wanted_mac:
                continue
            for address in nic.addresses:
                if address.is_loopback or (address.is_link_local and not include_link_local):
                    continue
                if family is not None and address.family != family:
                    continue
                pairs.append((nic, address))
        return pairs

    def primary_address(self, family: AddressFamily | None = None) -> IpAddress | None:
        """Choose the address to reach the VM by, or None when none is usable yet.

        Loopback and link-local addresses never qualify. IPv4 is preferred when
        no family is given, and addresses of container or bridge interfaces
        (docker0, veth..., br-...) rank last. The agent's list order does not
        decide: ties go to the lowest interface name, then the lowest address.
        """
        candidates = self.usable_addresses(family=family)
        if not candidates:
            return None
        best = min(
            candidates,
            key=lambda pair: (pair[0].is_virtual, pair[1].family != "ipv4", pair[0].name, pair[1].ip.packed),
        )
        return best[1]

    def addresses(self) -> list[str]:
        """Return the usable addresses as text, without prefix, in the order of ``usable_addresses``."""
        return [address.address for _, address in self.usable_addresses()]
