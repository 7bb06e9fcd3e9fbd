"""Everything that touches files: captures (pcap/pcapng via our own record
framing, link and network layers, IP and TCP reassembly, WebSocket, HEP) and,
optionally, tshark. Emits messages with provenance and calls the wire layer.

Public entry points are :func:`sipchain.load` and :func:`sipchain.iter_messages`.
"""

from sipchain.sources._limits import Limits

__all__ = ["Limits"]
