"""C++ glue between starmesh's arrays and ns-3, compiled at import by cppyy (ns-3's own Python
bindings).

Why C++ and not Python calls into ns-3: the network changes at every step (every link's delay,
some data rates, link states and next hops), and every received packet feeds a trace; calling
back into Python for each would cost more than the packet simulation itself. The glue only
wires ns-3's own classes together (PointToPointNetDevice/Channel, DropTailQueue,
RateErrorModel, Ipv4StaticRouting, BulkSend/OnOff/PacketSink applications, TCP socket trace
sources); ns-3 simulates every packet.
"""

from __future__ import annotations

BRIDGE_CPP = r"""
#include "ns3/core-module.h"
#include "ns3/network-module.h"
#include "ns3/internet-module.h"
#include "ns3/point-to-point-module.h"
#include "ns3/applications-module.h"
#include "ns3/traffic-control-module.h"
#include <map>
#include <vector>

namespace starmesh_ns3 {
using namespace ns3;

struct FlowTrace {
    // Receptions at the sink: time [s] and payload bytes.
    std::vector<double> rx_t; std::vector<double> rx_bytes;
    // Congestion window changes [s, B] and RTT samples [s, s] (TCP).
    std::vector<double> cwnd_t; std::vector<double> cwnd;
    std::vector<double> rtt_t; std::vector<double> rtt;
    // Retransmissions (TCP), data packets dropped, data packets delivered out of IP order.
    std::vector<double> retx_t; std::vector<double> drop_t; std::vector<double> reorder_t;
    // UDP: every received packet's sequence number, send and receive times.
    std::vector<double> seq; std::vector<double> sent_t; std::vector<double> recv_t;
    int32_t max_ip_id = -1;
};

class Bridge {
  public:
    uint32_t n_steps = 0, n_links = 0;
    double step_s = 0;
    NodeContainer nodes;
    std::vector<Ptr<PointToPointChannel>> ch;
    std::vector<Ptr<PointToPointNetDevice>> dev_a, dev_b;
    std::vector<uint32_t> if_a, if_b;  // interface index of each end on its node
    std::vector<uint32_t> node_a, node_b;
    std::vector<Ipv4Address> addr_a, addr_b;
    std::vector<Ptr<RateErrorModel>> em_a, em_b;
    std::vector<double> delay, rate;   // (T, L)
    std::vector<uint8_t> up;           // (T, L)
    std::vector<uint8_t> cur_up;
    std::vector<double> cur_rate;
    // Route deltas, sorted by step: node (local), destination (index), link (-1: drop).
    std::vector<uint32_t> r_off;       // T + 1 offsets
    std::vector<int32_t> r_node, r_dst, r_link;
    std::vector<Ipv4Address> dst_addr; // per destination index
    std::vector<Ptr<Ipv4StaticRouting>> routing;
    std::vector<FlowTrace> flows;
    std::map<uint16_t, uint32_t> flow_of;  // destination port of the data packets -> flow
    std::vector<ApplicationContainer> sources;

    void Init(uint32_t n_nodes, const int32_t* site_of_node, uint32_t n_steps_,
              double step_s_) {
        n_steps = n_steps_;
        step_s = step_s_;
        nodes.Create(n_nodes);
        InternetStackHelper stack;
        Ipv4StaticRoutingHelper st;
        stack.SetRoutingHelper(st);
        stack.Install(nodes);
        routing.resize(n_nodes);
        for (uint32_t i = 0; i < n_nodes; ++i) {
            routing[i] = st.GetStaticRouting(nodes.Get(i)->GetObject<Ipv4>());
        }
        site_of.assign(site_of_node, site_of_node + n_nodes);
    }

    static Ipv4Address SiteAddress(int32_t g) { return Ipv4Address(0x0B000001u + (uint32_t)g); }

    Ipv4Address NodeAddress(uint32_t node) {
        // A ground site has one address on all its interfaces, so its packets keep one source
        // address whichever satellite serves it; a satellite interface has its own.
        if (site_of[node] >= 0) return SiteAddress(site_of[node]);
        return Ipv4Address(0x0C000001u + next_sat_addr++);
    }

    uint32_t AddInterface(uint32_t node, Ptr<NetDevice> dev, Ipv4Address a) {
        Ptr<Ipv4> ip = nodes.Get(node)->GetObject<Ipv4>();
        uint32_t i = ip->AddInterface(dev);
        ip->AddAddress(i, Ipv4InterfaceAddress(a, Ipv4Mask("255.255.255.255")));
        ip->SetMetric(i, 1);
        ip->SetUp(i);
        return i;
    }

    void AddLinks(uint32_t n_links_, const int32_t* a, const int32_t* b, const double* delay_,
                  const double* rate_, const uint8_t* up_, uint32_t queue_packets) {
        n_links = n_links_;
        size_t n = (size_t)n_steps * n_links;
        delay.assign(delay_, delay_ + n);
        rate.assign(rate_, rate_ + n);
        up.assign(up_, up_ + n);
        PointToPointHelper p2p;
        p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize",
                     QueueSizeValue(QueueSize(QueueSizeUnit::PACKETS, queue_packets)));
        for (uint32_t l = 0; l < n_links; ++l) {
            NetDeviceContainer d = p2p.Install(nodes.Get(a[l]), nodes.Get(b[l]));
            Ptr<PointToPointNetDevice> da = DynamicCast<PointToPointNetDevice>(d.Get(0));
            Ptr<PointToPointNetDevice> db = DynamicCast<PointToPointNetDevice>(d.Get(1));
            dev_a.push_back(da);
            dev_b.push_back(db);
            ch.push_back(DynamicCast<PointToPointChannel>(da->GetChannel()));
            node_a.push_back(a[l]);
            node_b.push_back(b[l]);
            Ipv4Address xa = NodeAddress(a[l]), xb = NodeAddress(b[l]);
            addr_a.push_back(xa);
            addr_b.push_back(xb);
            if_a.push_back(AddInterface(a[l], da, xa));
            if_b.push_back(AddInterface(b[l], db, xb));
            for (int side = 0; side < 2; ++side) {
                Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
                em->SetUnit(RateErrorModel::ERROR_UNIT_PACKET);
                em->SetRate(1.0);
                em->Disable();
                (side ? db : da)->SetReceiveErrorModel(em);
                (side ? em_b : em_a).push_back(em);
                (side ? db : da)->TraceConnectWithoutContext(
                    "PhyRxDrop", MakeBoundCallback(&Bridge::OnDevDrop, this));
                (side ? db : da)->TraceConnectWithoutContext(
                    "MacTxDrop", MakeBoundCallback(&Bridge::OnDevDrop, this));
            }
        }
        cur_up.assign(n_links, 2);
        cur_rate.assign(n_links, -1.0);
        for (uint32_t i = 0; i < nodes.GetN(); ++i) {
            Ptr<Ipv4L3Protocol> ip = nodes.Get(i)->GetObject<Ipv4L3Protocol>();
            ip->TraceConnectWithoutContext("Drop", MakeBoundCallback(&Bridge::OnIpDrop, this));
            ip->TraceConnectWithoutContext("LocalDeliver",
                                           MakeBoundCallback(&Bridge::OnDeliver, this));
            nodes.Get(i)->GetObject<TrafficControlLayer>()->TraceConnectWithoutContext(
                "TcDrop", MakeBoundCallback(&Bridge::OnTcDrop, this));
        }
    }

    void SetRoutes(uint32_t n_dst, const int32_t* dst_site, uint32_t n_rows, const int32_t* off,
                   const int32_t* node, const int32_t* dst, const int32_t* link) {
        for (uint32_t d = 0; d < n_dst; ++d) dst_addr.push_back(SiteAddress(dst_site[d]));
        r_off.assign(off, off + n_steps + 1);
        r_node.assign(node, node + n_rows);
        r_dst.assign(dst, dst + n_rows);
        r_link.assign(link, link + n_rows);
        for (uint32_t k = 0; k < n_steps; ++k) {
            Simulator::Schedule(Seconds(k * step_s), &Bridge::Apply, this, k);
        }
    }

    void Apply(uint32_t k) {
        size_t base = (size_t)k * n_links;
        for (uint32_t l = 0; l < n_links; ++l) {
            ch[l]->SetAttribute("Delay", TimeValue(Seconds(delay[base + l])));
            if (rate[base + l] != cur_rate[l]) {
                cur_rate[l] = rate[base + l];
                dev_a[l]->SetDataRate(DataRate((uint64_t)cur_rate[l]));
                dev_b[l]->SetDataRate(DataRate((uint64_t)cur_rate[l]));
            }
            if (up[base + l] != cur_up[l]) {
                cur_up[l] = up[base + l];
                if (cur_up[l]) { em_a[l]->Disable(); em_b[l]->Disable(); }
                else { em_a[l]->Enable(); em_b[l]->Enable(); }
            }
        }
        for (uint32_t i = r_off[k]; i < r_off[k + 1]; ++i) {
            uint32_t n = r_node[i];
            Ipv4Address dest = dst_addr[r_dst[i]];
            Ptr<Ipv4StaticRouting> rt = routing[n];
            for (uint32_t j = 0; j < rt->GetNRoutes(); ++j) {
                Ipv4RoutingTableEntry e = rt->GetRoute(j);
                if (e.IsHost() && e.GetDest() == dest && e.GetGateway() != Ipv4Address::GetZero()) {
                    rt->RemoveRoute(j);
                    break;
                }
            }
            int32_t l = r_link[i];
            if (l < 0) continue;
            if (node_a[l] == n) rt->AddHostRouteTo(dest, addr_b[l], if_a[l]);
            else rt->AddHostRouteTo(dest, addr_a[l], if_b[l]);
        }
    }

    // --- Flows ---------------------------------------------------------------------------

    void SetTcpDefaults(uint32_t node, std::string type_id, uint32_t segment_bytes) {
        nodes.Get(node)->GetObject<TcpL4Protocol>()->SetAttribute(
            "SocketType", TypeIdValue(TypeId::LookupByName(type_id)));
        Config::SetDefault("ns3::TcpSocket::SegmentSize", UintegerValue(segment_bytes));
    }

    uint32_t AddTcpFlow(uint32_t src, uint32_t dst, int32_t dst_site, uint16_t port,
                        std::string type_id, uint32_t segment_bytes, uint64_t max_bytes,
                        double start_s, double stop_s) {
        uint32_t f = NewFlow(dst_site, port);
        Ipv4Address da = SiteAddress(dst_site);
        PacketSinkHelper sink("ns3::TcpSocketFactory",
                              InetSocketAddress(Ipv4Address::GetAny(), port));
        ApplicationContainer s = sink.Install(nodes.Get(dst));
        s.Get(0)->TraceConnectWithoutContext("Rx", MakeBoundCallback(&Bridge::OnRx, this, f));
        BulkSendHelper bulk("ns3::TcpSocketFactory", InetSocketAddress(da, port));
        bulk.SetAttribute("MaxBytes", UintegerValue(max_bytes));
        bulk.SetAttribute("SendSize", UintegerValue(segment_bytes));
        ApplicationContainer a = bulk.Install(nodes.Get(src));
        a.Start(Seconds(start_s));
        a.Stop(Seconds(stop_s));
        // The socket's congestion control and segment size are read when the application
        // creates it; this event is scheduled before the application's start (same time,
        // lower event id), so it runs first.
        Simulator::Schedule(Seconds(start_s), &Bridge::SetTcpDefaults, this, src, type_id,
                            segment_bytes);
        Simulator::Schedule(Seconds(start_s) + NanoSeconds(1), &Bridge::HookTcp, this, f,
                            a.Get(0));
        sources.push_back(a);
        return f;
    }

    void HookTcp(uint32_t f, Ptr<Application> app) {
        Ptr<Socket> s = DynamicCast<BulkSendApplication>(app)->GetSocket();
        if (!s) return;
        s->TraceConnectWithoutContext("CongestionWindow",
                                      MakeBoundCallback(&Bridge::OnCwnd, this, f));
        s->TraceConnectWithoutContext("LastRTT", MakeBoundCallback(&Bridge::OnRtt, this, f));
        s->TraceConnectWithoutContext("Retransmission",
                                      MakeBoundCallback(&Bridge::OnRetx, this, f));
    }

    uint32_t AddUdpFlow(uint32_t src, uint32_t dst, int32_t dst_site, uint16_t port,
                        uint32_t packet_bytes, double rate_bps, double start_s, double stop_s) {
        uint32_t f = NewFlow(dst_site, port);
        Ipv4Address da = SiteAddress(dst_site);
        PacketSinkHelper sink("ns3::UdpSocketFactory",
                              InetSocketAddress(Ipv4Address::GetAny(), port));
        sink.SetAttribute("EnableSeqTsSizeHeader", BooleanValue(true));
        ApplicationContainer s = sink.Install(nodes.Get(dst));
        s.Get(0)->TraceConnectWithoutContext("Rx", MakeBoundCallback(&Bridge::OnRx, this, f));
        s.Get(0)->TraceConnectWithoutContext("RxWithSeqTsSize",
                                             MakeBoundCallback(&Bridge::OnUdp, this, f));
        OnOffHelper onoff("ns3::UdpSocketFactory", InetSocketAddress(da, port));
        onoff.SetConstantRate(DataRate((uint64_t)rate_bps), packet_bytes);
        onoff.SetAttribute("EnableSeqTsSizeHeader", BooleanValue(true));
        ApplicationContainer a = onoff.Install(nodes.Get(src));
        a.Start(Seconds(start_s));
        a.Stop(Seconds(stop_s));
        sources.push_back(a);
        return f;
    }

    uint32_t NewFlow(int32_t dst_site, uint16_t port) {
        flows.emplace_back();
        uint32_t f = flows.size() - 1;
        flow_of[port] = f;
        return f;
    }

    // --- Traces --------------------------------------------------------------------------

    static void OnRx(Bridge* b, uint32_t f, Ptr<const Packet> p, const Address&) {
        b->flows[f].rx_t.push_back(Simulator::Now().GetSeconds());
        b->flows[f].rx_bytes.push_back(p->GetSize());
    }
    static void OnUdp(Bridge* b, uint32_t f, Ptr<const Packet>, const Address&, const Address&,
                      const SeqTsSizeHeader& h) {
        FlowTrace& t = b->flows[f];
        t.seq.push_back(h.GetSeq());
        t.sent_t.push_back(h.GetTs().GetSeconds());
        t.recv_t.push_back(Simulator::Now().GetSeconds());
    }
    static void OnCwnd(Bridge* b, uint32_t f, uint32_t, uint32_t v) {
        b->flows[f].cwnd_t.push_back(Simulator::Now().GetSeconds());
        b->flows[f].cwnd.push_back(v);
    }
    static void OnRtt(Bridge* b, uint32_t f, Time, Time v) {
        b->flows[f].rtt_t.push_back(Simulator::Now().GetSeconds());
        b->flows[f].rtt.push_back(v.GetSeconds());
    }
    static void OnRetx(Bridge* b, uint32_t f, Ptr<const Packet>, const TcpHeader&,
                       const Address&, const Address&, Ptr<const TcpSocketBase>) {
        b->flows[f].retx_t.push_back(Simulator::Now().GetSeconds());
    }

    // Flow of a data packet from its destination port: every flow has its own port, below
    // ns-3's ephemeral range (49152 and up) where the ACKs' destination ports lie (-1: none).
    int32_t Classify(Ptr<const Packet> transport) {
        uint8_t buf[4];
        if (transport->GetSize() < 4) return -1;
        transport->CopyData(buf, 4);
        auto it = flow_of.find((uint16_t)(buf[2] << 8 | buf[3]));
        return it == flow_of.end() ? -1 : (int32_t)it->second;
    }
    // The same for a packet that may still carry its PPP (0x0021: IPv4) and IPv4 (version 4,
    // 20-byte header: first byte 0x45) headers; a transport header cannot start with either,
    // since data packets leave from ephemeral ports (49152 and up).
    int32_t ClassifyFrame(Ptr<const Packet> p) {
        uint8_t b2[2];
        if (p->GetSize() < 2) return -1;
        p->CopyData(b2, 2);
        bool ppp = b2[0] == 0x00 && b2[1] == 0x21;
        if (!ppp && b2[0] != 0x45) return Classify(p);
        Ptr<Packet> q = p->Copy();
        if (ppp) { PppHeader h; q->RemoveHeader(h); }
        Ipv4Header ip;
        q->RemoveHeader(ip);
        return Classify(q);
    }
    static void OnTcDrop(Bridge* b, Ptr<const Packet> p) {
        int32_t f = b->ClassifyFrame(p);
        if (f >= 0) b->flows[f].drop_t.push_back(Simulator::Now().GetSeconds());
    }
    static void OnDevDrop(Bridge* b, Ptr<const Packet> p) {
        int32_t f = b->ClassifyFrame(p);
        if (f >= 0) b->flows[f].drop_t.push_back(Simulator::Now().GetSeconds());
    }
    static void OnIpDrop(Bridge* b, const Ipv4Header& h, Ptr<const Packet> p,
                         Ipv4L3Protocol::DropReason, Ptr<Ipv4>, uint32_t) {
        int32_t f = b->Classify(p);
        if (f >= 0) b->flows[f].drop_t.push_back(Simulator::Now().GetSeconds());
    }
    static void OnDeliver(Bridge* b, const Ipv4Header& h, Ptr<const Packet> p, uint32_t) {
        int32_t f = b->Classify(p);
        if (f < 0) return;
        // Network-level reordering (RFC 4737): a packet whose IP identification is below the
        // highest seen of its flow; ns-3 numbers IP packets per (source, destination, protocol)
        // in send order, and a retransmission gets a new number, so this counts only reordering.
        FlowTrace& t = b->flows[f];
        int32_t id = h.GetIdentification();
        if (t.max_ip_id >= 0 && (int16_t)(uint16_t)(id - t.max_ip_id) < 0) {
            t.reorder_t.push_back(Simulator::Now().GetSeconds());
        } else {
            t.max_ip_id = id;
        }
    }

    // --- Results -------------------------------------------------------------------------

    const std::vector<double>& Series(uint32_t f, int which) {
        FlowTrace& t = flows[f];
        switch (which) {
            case 0: return t.rx_t; case 1: return t.rx_bytes; case 2: return t.cwnd_t;
            case 3: return t.cwnd; case 4: return t.rtt_t; case 5: return t.rtt;
            case 6: return t.retx_t; case 7: return t.drop_t; case 8: return t.reorder_t;
            case 9: return t.seq; case 10: return t.sent_t; default: return t.recv_t;
        }
    }

  private:
    std::vector<int32_t> site_of;
    uint32_t next_sat_addr = 0;
};

}  // namespace starmesh_ns3
"""

#: Order of the series ``Bridge::Series`` returns.
SERIES = (
    "rx_t",
    "rx_bytes",
    "cwnd_t",
    "cwnd",
    "rtt_t",
    "rtt",
    "retx_t",
    "drop_t",
    "reorder_t",
    "seq",
    "sent_t",
    "recv_t",
)
