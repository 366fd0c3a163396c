using System.Net;
using Nemotron.Gym.Grains;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Grains.Tests;

/// <summary>The membership table against a live PostgreSQL: Orleans' optimistic protocol on table version and row etags.</summary>
public sealed class PostgresMembershipTableTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static int _generation = 1000;

    private async Task<(PostgresMembershipTable Table, string Connection)> NewTable(string cluster = "c1", bool init = true)
    {
        string cs = await pg.Server.CreateDatabaseAsync();
        var table = new PostgresMembershipTable(cs, cluster);
        await table.InitializeMembershipTable(init);
        return (table, cs);
    }

    private static DateTime Now()
    {
        var t = DateTime.UtcNow; // whole seconds: timestamptz keeps microseconds, DateTime ticks are finer
        return new DateTime(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);
    }

    private static MembershipEntry Entry(SiloStatus status = SiloStatus.Joining, DateTime? time = null)
    {
        var silo = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 11111), Interlocked.Increment(ref _generation));
        return new MembershipEntry
        {
            SiloAddress = silo, Status = status, HostName = "host", SiloName = "silo-" + _generation, ProxyPort = 30000,
            StartTime = time ?? Now(), IAmAliveTime = time ?? Now(),
        };
    }

    [Fact]
    public void EveryMemberOfTheInterfaceIsOursIncludingTheCancellableOnes()
    {
        // A member left to the interface's default would wait on the plain one and never cancel the database call.
        var map = typeof(PostgresMembershipTable).GetInterfaceMap(typeof(IMembershipTable));
        Assert.All(map.TargetMethods, m => Assert.Equal(typeof(PostgresMembershipTable), m.DeclaringType));
        Assert.Contains(map.InterfaceMethods, m => m.Name == "ReadAllAsync");
    }

    [Fact]
    public async Task AFreshTableIsEmptyAtVersionZeroAndAClientCanReadItBeforeAnySilo()
    {
        var (table, cs) = await NewTable(init: true);
        var data = await table.ReadAll();
        Assert.Empty(data.Members);
        Assert.Equal(0, data.Version.Version);
        Assert.False(string.IsNullOrEmpty(data.Version.VersionEtag));

        // A client initializes without the version row; reading still works.
        var client = new PostgresMembershipTable(cs, "no-silo-yet");
        await client.InitializeMembershipTable(false);
        Assert.Empty((await client.ReadAll()).Members);
        Assert.Equal(0, (await client.ReadAll()).Version.Version);
        // Initializing twice (every silo does) changes nothing.
        await table.InitializeMembershipTable(true);
        Assert.Equal(data.Version, (await table.ReadAll()).Version);
    }

    [Fact]
    public async Task AnInsertedEntryReadsBackWithEveryFieldAndTheNewTableVersion()
    {
        var (table, _) = await NewTable();
        var before = (await table.ReadAll()).Version;
        var entry = Entry(SiloStatus.Active);
        entry.RoleName = "trainer";
        entry.UpdateZone = 3;
        entry.FaultZone = 4;
        entry.SuspectTimes = [Tuple.Create(Entry().SiloAddress, Now().AddSeconds(-5)), Tuple.Create(Entry().SiloAddress, Now())];
        Assert.True(await table.InsertRow(entry, before.Next()));

        var all = await table.ReadAll();
        var row = Assert.Single(all.Members);
        Assert.Equal(entry.ToFullString(), row.Item1.ToFullString());
        Assert.Equal(30000, row.Item1.ProxyPort); // clients find gateways by it
        Assert.Equal(1, all.Version.Version);
        Assert.NotEqual(before.VersionEtag, all.Version.VersionEtag);

        var one = await table.ReadRow(entry.SiloAddress);
        Assert.Equal(all.Version, one.Version);
        Assert.Equal(row.Item2, Assert.Single(one.Members).Item2);
        var missing = await table.ReadRow(Entry().SiloAddress);
        Assert.Empty(missing.Members);
        Assert.Equal(all.Version, missing.Version);

        // A null suspect list stays null (Orleans tells null from empty in its entry text).
        var plain = Entry();
        Assert.True(await table.InsertRow(plain, all.Version.Next()));
        Assert.Null((await table.ReadRow(plain.SiloAddress)).Members[0].Item1.SuspectTimes);
    }

    [Fact]
    public async Task AnInsertFailsOnAStaleTableVersionOrAnExistingSiloAndChangesNothing()
    {
        var (table, _) = await NewTable();
        var v0 = (await table.ReadAll()).Version;
        var entry = Entry();
        Assert.True(await table.InsertRow(entry, v0.Next()));
        // The same version again: its etag is gone, whatever the entry.
        Assert.False(await table.InsertRow(entry, v0.Next()));
        Assert.False(await table.InsertRow(Entry(), v0.Next()));
        // The current version but a silo already there.
        var v1 = (await table.ReadAll()).Version;
        Assert.False(await table.InsertRow(entry, v1.Next()));

        var after = await table.ReadAll();
        Assert.Single(after.Members);
        Assert.Equal(v1, after.Version); // the failed insert did not bump the version either
    }

    [Fact]
    public async Task AnUpdateNeedsTheCurrentTableVersionAndTheRowsEtag()
    {
        var (table, _) = await NewTable();
        var entry = Entry();
        Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        var read = await table.ReadAll();
        string etag = read.Members[0].Item2;
        var stale = read.Version;

        // Another silo's change moves the table version on.
        var other = Entry();
        Assert.True(await table.InsertRow(other, stale.Next()));
        entry.Status = SiloStatus.Active;
        Assert.False(await table.UpdateRow(entry, etag, stale.Next()));

        var current = (await table.ReadAll()).Version;
        Assert.False(await table.UpdateRow(entry, "12345", current.Next())); // wrong row etag
        Assert.False(await table.UpdateRow(entry, "not-a-number", current.Next()));
        Assert.False(await table.UpdateRow(Entry(), etag, current.Next())); // no such silo
        Assert.Equal(current, (await table.ReadAll()).Version);

        Assert.True(await table.UpdateRow(entry, etag, current.Next()));
        var after = await table.ReadRow(entry.SiloAddress);
        Assert.Equal(SiloStatus.Active, after.Members[0].Item1.Status);
        Assert.Equal(current.Version + 1, after.Version.Version);
        Assert.NotEqual(etag, after.Members[0].Item2);
        // The same update again: both its etags are spent.
        Assert.False(await table.UpdateRow(entry, etag, current.Next()));
        Assert.False(await table.UpdateRow(entry, etag, after.Version.Next()));
        Assert.True(await table.UpdateRow(entry, after.Members[0].Item2, after.Version.Next()));
    }

    [Fact]
    public async Task ConcurrentWritersOfOneVersionHaveExactlyOneWinner()
    {
        var (table, _) = await NewTable();
        var v0 = (await table.ReadAll()).Version;
        var inserts = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => table.InsertRow(Entry(), v0.Next())));
        Assert.Single(inserts, ok => ok);

        // Writers that each retry read-then-update until theirs lands: every update counts once.
        var target = (await table.ReadAll()).Members[0].Item1.SiloAddress;
        const int writers = 8;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(i => Task.Run(async () =>
        {
            while (true)
            {
                var data = await table.ReadRow(target);
                var (entry, etag) = (data.Members[0].Item1, data.Members[0].Item2);
                entry.AddSuspector(Entry().SiloAddress, Now());
                if (await table.UpdateRow(entry, etag, data.Version.Next())) return;
            }
        }))).WaitAsync(TimeSpan.FromSeconds(30));
        var final = await table.ReadRow(target);
        Assert.Equal(1 + writers, final.Version.Version);
        Assert.Equal(writers, final.Members[0].Item1.SuspectTimes!.Count); // no update lost
    }

    [Fact]
    public async Task AHeartbeatMovesOnlyTheAliveTimeAndLeavesEtagsValid()
    {
        var (table, _) = await NewTable();
        var entry = Entry(SiloStatus.Active);
        Assert.True(await table.InsertRow(entry, (await table.ReadAll()).Version.Next()));
        var before = await table.ReadAll();

        var alive = Now().AddSeconds(7);
        // Orleans sends only the address and the time.
        await table.UpdateIAmAlive(new MembershipEntry { SiloAddress = entry.SiloAddress, IAmAliveTime = alive });
        var after = await table.ReadAll();
        var row = Assert.Single(after.Members);
        Assert.Equal(alive, row.Item1.IAmAliveTime);
        Assert.Equal(before.Version, after.Version);
        Assert.Equal(before.Members[0].Item2, row.Item2);
        Assert.Equal(SiloStatus.Active, row.Item1.Status);
        Assert.Equal(entry.SiloName, row.Item1.SiloName);

        // A change prepared before the heartbeat still goes through, and does not set the alive time back.
        var prepared = before.Members[0].Item1;
        prepared.Status = SiloStatus.ShuttingDown;
        Assert.True(await table.UpdateRow(prepared, before.Members[0].Item2, before.Version.Next()));
        var changed = (await table.ReadRow(entry.SiloAddress)).Members[0].Item1;
        Assert.Equal(SiloStatus.ShuttingDown, changed.Status);
        Assert.Equal(alive, changed.IAmAliveTime);

        // A heartbeat of a silo that is not there is a no-op.
        await table.UpdateIAmAlive(new MembershipEntry { SiloAddress = Entry().SiloAddress, IAmAliveTime = alive });
        Assert.Single((await table.ReadAll()).Members);
    }

    [Fact]
    public async Task CleanupRemovesOldEntriesThatAreNotActiveAndKeepsRecentOnes()
    {
        var (table, _) = await NewTable();
        var old = Now().AddDays(-10);
        var kept = new List<MembershipEntry>();
        var removed = new List<MembershipEntry>();
        foreach (var status in Enum.GetValues<SiloStatus>())
            (status == SiloStatus.Active ? kept : removed).Add(Entry(status, old));
        kept.Add(Entry(SiloStatus.Dead)); // died recently
        var votedRecently = Entry(SiloStatus.Dead, old); // silent for long, but declared dead recently
        votedRecently.SuspectTimes = [Tuple.Create(Entry().SiloAddress, Now())];
        kept.Add(votedRecently);
        var startedRecently = Entry(SiloStatus.Joining, old);
        startedRecently.StartTime = Now();
        kept.Add(startedRecently);

        foreach (var e in kept.Concat(removed))
            Assert.True(await table.InsertRow(e, (await table.ReadAll()).Version.Next()));
        var version = (await table.ReadAll()).Version;

        await table.CleanupDefunctSiloEntries(DateTimeOffset.UtcNow.AddDays(-3));
        var left = await table.ReadAll();
        Assert.Equal(kept.Select(e => e.SiloAddress.ToParsableString()).Order(), left.Members.Select(m => m.Item1.SiloAddress.ToParsableString()).Order());
        Assert.Equal(version, left.Version);
    }

    [Fact]
    public async Task DeletingAClustersEntriesLeavesOtherClustersAndOldEtagsDoNotComeBack()
    {
        var (a, cs) = await NewTable("a");
        var b = new PostgresMembershipTable(cs, "b");
        await b.InitializeMembershipTable(true);
        var va = (await a.ReadAll()).Version;
        Assert.True(await a.InsertRow(Entry(), va.Next()));
        Assert.True(await b.InsertRow(Entry(), (await b.ReadAll()).Version.Next()));
        Assert.Single((await a.ReadAll()).Members); // each cluster sees its own silos only
        var staleA = (await a.ReadAll()).Version;

        await a.DeleteMembershipTableEntries("a");
        Assert.Single((await b.ReadAll()).Members);
        await a.InitializeMembershipTable(true);
        var fresh = await a.ReadAll();
        Assert.Empty(fresh.Members);
        Assert.Equal(0, fresh.Version.Version);
        Assert.False(await a.InsertRow(Entry(), staleA.Next()));
        Assert.False(await a.InsertRow(Entry(), va.Next()));
        Assert.True(await a.InsertRow(Entry(), fresh.Version.Next()));
    }
}
