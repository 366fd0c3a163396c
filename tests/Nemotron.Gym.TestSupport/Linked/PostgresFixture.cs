namespace Nemotron.Gym.TestSupport;

/// <summary>One PostgreSQL server for a test class; every test fails (not skips) when PostgreSQL is not installed.</summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private PostgresServer? _server;

    public PostgresServer Server => _server ?? throw new InvalidOperationException("the PostgreSQL server did not start");

    public async ValueTask InitializeAsync() => _server = await PostgresServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        if (_server != null) await _server.DisposeAsync();
    }
}
