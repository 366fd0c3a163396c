using System.Globalization;
using Microsoft.Playwright;
using Nemotron.Gym.Cli.Tests;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Ui.Tests;

/// <summary>`gym ui --store postgres:...`: the real run's rollouts copied into a live PostgreSQL and browsed there.</summary>
[Collection(UiCollection.Name)]
public sealed class UiPostgresTests(UiFixture ui, PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ThePagesServeAPostgresStoreAndLeaveItUnchanged()
    {
        string connection = "postgres:" + await pg.Server.CreateDatabaseAsync();
        List<StoredRollout> all;
        await using (var source = await RolloutStores.OpenAsync("sqlite:" + ui.StorePath))
        await using (var target = await RolloutStores.OpenAsync(connection))
        {
            all = await source.ReadRolloutsAsync(new RolloutQuery(UiFixture.RunId)).ToListAsync();
            await target.AddRolloutsAsync(all);
            foreach (var run in await source.ListRunsAsync()) await target.PutRunAsync(run);
            await foreach (var (step, json) in source.ReadStepMetricsAsync(UiFixture.RunId)) await target.PutStepMetricsAsync(UiFixture.RunId, step, json);
        }
        int port = Ports.Free();
        using var child = GymProcess.Start(ui.Dir, "ui", "--store", connection, "--port", port.ToString(CultureInfo.InvariantCulture));
        await child.WaitForAsync("serving", TimeSpan.FromSeconds(60));
        string url = $"http://127.0.0.1:{port}";

        var log = await ui.NewPageAsync();
        await log.Page.GotoAsync($"{url}/rollouts?run={UiFixture.RunId}&env=math&size=200");
        var expected = all.Where(r => r.Environment == "math").ToList();
        Assert.Equal(expected.Count.ToString(CultureInfo.InvariantCulture), await log.Page.Locator("#total").TextContentAsync());
        Assert.Equal(expected.Count, await log.Page.Locator("#rollouts tbody tr").CountAsync());
        await log.Page.Locator("#rollouts tbody tr a.sample").First.ClickAsync();
        await log.Page.Locator("#tokens").WaitForAsync();
        var first = expected.OrderBy(r => r.Step).ThenBy(r => r.TaskId, StringComparer.Ordinal).ThenBy(r => r.SampleIndex).First();
        Assert.Equal(first.GeneratedTokens, await log.Page.Locator("#tokens .tok").CountAsync());
        await log.Page.GotoAsync($"{url}/run?id={UiFixture.RunId}");
        await log.Page.Locator("#last-step").Filter(new() { HasTextRegex = new("^\\d+$") }).WaitForAsync();
        Assert.Empty(log.Errors);

        await using var check = await RolloutStores.OpenAsync(connection);
        Assert.Equal(all.Count, await check.CountRolloutsAsync(UiFixture.RunId));
    }
}
