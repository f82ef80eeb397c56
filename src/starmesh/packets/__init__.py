"""Packet level: the run's network, step by step, in ns-3 (TCP and UDP flows between sites).

ns-3 itself is optional (``pip install "starmesh[ns3]"``); everything but
:func:`~starmesh.packets.ns3sim.run_packets` works without it.
"""

from .flows import CostEstimate, Flow, estimate_cost, jain_index
from .network import (
    ForwardingState,
    PacketNetwork,
    build_network,
    forwarding_state_from_rows,
    read_forwarding_state,
)
from .ns3sim import INSTALL_HINT, PacketResult, flow_summary, load_ns3, run_packets

__all__ = [
    "INSTALL_HINT",
    "CostEstimate",
    "Flow",
    "ForwardingState",
    "PacketNetwork",
    "PacketResult",
    "build_network",
    "estimate_cost",
    "flow_summary",
    "forwarding_state_from_rows",
    "jain_index",
    "load_ns3",
    "read_forwarding_state",
    "run_packets",
]
