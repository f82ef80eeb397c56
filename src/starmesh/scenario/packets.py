"""The ``[packets]`` table: flows to replay at packet level in ns-3 over a finished run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import StrictModel


class PacketFlowSpec(StrictModel):
    """One flow between two ground sites of the run."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=60)
    src: str
    dst: str
    protocol: Literal["tcp", "udp"]
    tcp_variant: Literal["newreno", "cubic", "bbr"] = "newreno"
    start_s: float = Field(0.0, ge=0.0)
    stop_s: float | None = Field(None, gt=0.0)
    size_mb: float | None = Field(None, gt=0.0)
    rate_mbps: float | None = Field(None, gt=0.0, le=1e5)
    probe_interval_ms: float | None = Field(None, gt=0.0, le=60_000.0)
    packet_bytes: int | None = Field(None, ge=20, le=65_000)

    @model_validator(mode="after")
    def _check(self) -> PacketFlowSpec:
        if self.src == self.dst:
            raise ValueError(f"src and dst are both {self.src!r}: give two different sites")
        if self.stop_s is not None and self.stop_s <= self.start_s:
            raise ValueError(f"stop_s ({self.stop_s:g}) must be after start_s ({self.start_s:g})")
        if self.protocol == "udp" and self.rate_mbps is None and self.probe_interval_ms is None:
            raise ValueError("a UDP flow needs rate_mbps or probe_interval_ms")
        if self.protocol == "tcp" and (self.rate_mbps or self.probe_interval_ms):
            raise ValueError(
                "rate_mbps and probe_interval_ms are for UDP flows: TCP sends as fast as it may"
            )
        if self.protocol == "udp" and self.size_mb is not None:
            raise ValueError("size_mb is for TCP flows: give UDP a rate and stop_s")
        return self


class PacketsSpec(StrictModel):
    """Packet-level replay of a run in ns-3 (``pip install "starmesh[ns3]"``).

    Needs ``[routing] forwarding_state = true``: packets follow the run's own next hops.
    """

    mode: Literal["isl", "bent-pipe"] = "isl"
    duration_s: float | None = Field(None, gt=0.0)
    isl_rate_mbps: float = Field(10.0, ge=0.001, le=1e5)
    gsl_rate_mbps: float = Field(10.0, ge=0.001, le=1e5)
    queue_packets: int = Field(100, ge=1, le=100_000)
    bin_s: float = Field(0.1, gt=0.0, le=3600.0)
    tcp_buffer_kib: int = Field(8192, ge=64, le=4_194_304)
    max_wall_s: float = Field(1800.0, gt=0.0)
    max_memory_gb: float = Field(8.0, gt=0.0)
    flows: list[PacketFlowSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> PacketsSpec:
        names = [f.name for f in self.flows]
        if len(set(names)) != len(names):
            raise ValueError(f"flows: names must be unique, got {names}")
        return self
