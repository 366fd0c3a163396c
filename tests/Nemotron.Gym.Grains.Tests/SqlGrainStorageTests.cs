using Nemotron.Gym.Grains;
using Nemotron.Gym.TestSupport;
using Orleans.Storage;

namespace Nemotron.Gym.Grains.Tests;

/// <summary>The grain storage on both databases: etags, clearing, and several silos creating the schema at once.</summary>
public sealed class SqlGrainStorageTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("grain-state-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    public sealed class Counter
    {
        public int Value { get; set; }
        public string Note { get; set; } = "";
    }

    private async Task<string> NewConnection(string db) =>
        db == "sqlite" ? $"sqlite:{Path.Combine(_dir, "state.db")}" : "postgres:" + await pg.Server.CreateDatabaseAsync();

    private static GrainState<Counter> Empty() => new(new Counter());

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AWriteWithAStaleEtagIsRefusedAndTheStoredStateStays(string db)
    {
        var conn = await NewConnection(db);
        var id = GrainId.Create("run", "r1");
        var a = new SqlGrainStorage(conn);
        var mine = Empty();
        await a.ReadStateAsync("run", id, mine);
        Assert.False(mine.RecordExists);
        mine.State = new Counter { Value = 1, Note = "first <script>\"'" };
        await a.WriteStateAsync("run", id, mine);

        // A second reader sees it, writes, and moves the etag on.
        var b = new SqlGrainStorage(conn);
        var theirs = Empty();
        await b.ReadStateAsync("run", id, theirs);
        Assert.Equal((1, "first <script>\"'"), (theirs.State!.Value, theirs.State.Note));
        theirs.State.Value = 2;
        await b.WriteStateAsync("run", id, theirs);

        // The first holder's etag is stale now; a blind insert of a record that exists is refused too.
        mine.State.Value = 99;
        var e = await Assert.ThrowsAsync<InconsistentStateException>(() => a.WriteStateAsync("run", id, mine));
        Assert.Contains("written by someone else", e.Message);
        var blind = new GrainState<Counter>(new Counter { Value = 7 });
        await Assert.ThrowsAsync<InconsistentStateException>(() => a.WriteStateAsync("run", id, blind));

        var check = Empty();
        await new SqlGrainStorage(conn).ReadStateAsync("run", id, check);
        Assert.Equal(2, check.State!.Value);

        await b.ClearStateAsync("run", id, theirs);
        await a.ReadStateAsync("run", id, check);
        Assert.False(check.RecordExists);
        Assert.Equal(0, check.State.Value);
    }

    [Fact]
    public async Task SilosStartingTogetherOnAFreshPostgresDatabaseAllGetTheirStateStored()
    {
        var conn = await NewConnection("postgres");
        // Eight storages (as eight silos) whose first call creates the schema, all at the same moment.
        var storages = Enumerable.Range(0, 8).Select(_ => new SqlGrainStorage(conn)).ToList();
        await Task.WhenAll(storages.Select(async (s, i) =>
        {
            var state = new GrainState<Counter>(new Counter { Value = i });
            await s.WriteStateAsync("run", GrainId.Create("run", $"g{i}"), state);
        }));
        var all = await new SqlGrainStorage(conn).ReadAllAsync("run");
        Assert.Equal(8, all.Count);
    }
}
