using System.Net;
using System.Net.Sockets;

namespace Nemotron.Gym.TestSupport;

/// <summary>Ports for servers a test starts (PostgreSQL, silos, gateways).</summary>
public static class Ports
{
    /// <summary>A loopback TCP port free at the moment of asking (the system picks it; it is released at once).</summary>
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
