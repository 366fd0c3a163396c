using Nemotron.Gym.TestSupport;
using Npgsql;
using static Nemotron.Gym.TestSupport.TestRollouts;

namespace Nemotron.Gym.Store.Tests;

/// <summary>The contract on a real PostgreSQL, each test in a database of its own.</summary>
public sealed class PostgresRolloutStoreTests(PostgresFixture pg) : RolloutStoreContract, IClassFixture<PostgresFixture>
{
    protected override async Task<string> NewStoreAsync() => "postgres:" + await pg.Server.CreateDatabaseAsync();

    [Fact]
    public async Task TheStoreSharesADatabaseWithOtherTables()
    {
        string cs = await pg.Server.CreateDatabaseAsync();
        await using (var c = new NpgsqlConnection(cs))
        {
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("CREATE TABLE orleansmembershiptable (id INTEGER); CREATE TABLE runs (id INTEGER)", c);
            await cmd.ExecuteNonQueryAsync();
        }
        await using var s = await RolloutStores.OpenAsync("postgres:" + cs);
        Assert.Equal(1, await s.AddRolloutsAsync([Make("r", 1, "math/a", 0)]));
    }

    [Fact]
    public async Task AnUnreachableServerIsNamedInTheError()
    {
        var e = await Assert.ThrowsAsync<RolloutStoreUnavailableException>(() => RolloutStores.OpenAsync("postgres:Host=127.0.0.1;Port=1;Database=nowhere;Timeout=2"));
        Assert.Contains("127.0.0.1:1/nowhere", e.Message);
        Assert.Contains("check that the server is running", e.Message);
    }
}
