using Nemotron.Gym.TestSupport;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.Ui.Tests;

/// <summary>Every page of `gym ui` over the store of a real `gym rl` run, in Chromium.</summary>
[Collection(UiCollection.Name)]
public sealed class UiPagesTests(UiFixture ui)
{
    private async Task<List<StoredRollout>> AllRolloutsAsync()
    {
        await using var s = await RolloutStores.OpenAsync("sqlite:" + ui.StorePath);
        return await s.ReadRolloutsAsync(new RolloutQuery(UiFixture.RunId)).ToListAsync();
    }

    private static string Q(string s) => Uri.EscapeDataString(s);

    private static string RolloutUrl(StoredRollout r) => $"/rollout?run={Q(r.RunId)}&step={r.Step}&task={Q(r.TaskId)}&sample={r.SampleIndex}";

    private async Task<PageLog> OpenAsync(string path, string? screenshot = null)
    {
        var log = await ui.NewPageAsync();
        var response = await log.Page.GotoAsync(ui.BaseUrl + path, new() { WaitUntil = WaitUntilState.NetworkIdle });
        Assert.True(response is { Status: 200 }, $"{path}: HTTP {response?.Status}");
        if (screenshot != null) await log.Page.ScreenshotAsync(new() { Path = Path.Combine(ui.Screenshots, screenshot + ".png"), FullPage = true });
        return log;
    }

    [Fact]
    public async Task EveryPageLoadsWithoutConsoleErrors()
    {
        var all = await AllRolloutsAsync();
        Assert.NotEmpty(all);
        var longest = all.OrderByDescending(r => r.GeneratedTokens).First();
        var runs = await OpenAsync("/", "runs");
        Assert.Equal(UiFixture.RunId, await runs.Page.Locator("#runs tbody tr td a").First.TextContentAsync());

        var dashboard = await OpenAsync($"/run?id={Q(UiFixture.RunId)}");
        await dashboard.Page.Locator("#last-step").Filter(new() { HasTextRegex = new("^\\d+$") }).WaitForAsync();
        Assert.True(await dashboard.Page.Locator("#dashboard .uplot").CountAsync() >= 10, "the dashboard draws its charts");
        Assert.Equal("3", await dashboard.Page.Locator("#last-step").TextContentAsync());
        Assert.Equal(["math", "reasoning"], (await dashboard.Page.Locator(".chart").First.Locator(".u-legend .u-series .u-label").AllTextContentsAsync()).Skip(1));
        await dashboard.Page.ScreenshotAsync(new() { Path = Path.Combine(ui.Screenshots, "dashboard.png"), FullPage = true });

        var pages = new List<PageLog>
        {
            runs, dashboard,
            await OpenAsync($"/rollouts?run={Q(UiFixture.RunId)}", "rollouts"),
            await OpenAsync(RolloutUrl(longest), "rollout"),
            await OpenAsync($"/group?run={Q(UiFixture.RunId)}&step={longest.Step}&task={Q(longest.TaskId)}", "group"),
            await OpenAsync($"/compare?run={Q(UiFixture.RunId)}&step={longest.Step}&task={Q(longest.TaskId)}&run2={Q(UiFixture.RunId)}&step2={longest.Step}", "compare"),
            await OpenAsync($"/config?run={Q(UiFixture.RunId)}"),
        };
        foreach (var p in pages) Assert.True(p.Errors.Count == 0, $"{p.Page.Url}: {string.Join("; ", p.Errors)}");
        Assert.Equal(all.Count.ToString(CultureInfo.InvariantCulture), await pages[2].Page.Locator("#total").TextContentAsync());
    }

    /// <summary>The (step, task, sample) keys in the browser's table, in order.</summary>
    private static async Task<List<(int, string, int)>> TableKeys(IPage page)
    {
        var keys = new List<(int, string, int)>();
        foreach (var row in await page.Locator("#rollouts tbody tr").AllAsync())
        {
            var cells = await row.Locator("td").AllTextContentsAsync();
            keys.Add((int.Parse(cells[0], CultureInfo.InvariantCulture), cells[1], int.Parse(cells[2].TrimStart('#'), CultureInfo.InvariantCulture)));
        }
        return keys;
    }

    private static List<(int, string, int)> KeyOrder(IEnumerable<StoredRollout> rows) =>
        [.. rows.OrderBy(r => r.Step).ThenBy(r => r.TaskId, StringComparer.Ordinal).ThenBy(r => r.SampleIndex).Select(r => (r.Step, r.TaskId, r.SampleIndex))];

    [Fact]
    public async Task FiltersNarrowTheTableToTheRightRows()
    {
        var all = await AllRolloutsAsync();
        // Through the form, as a person does.
        var log = await OpenAsync($"/rollouts?run={Q(UiFixture.RunId)}&size=200");
        var page = log.Page;
        await page.SelectOptionAsync("select[name=env]", "math");
        await page.FillAsync("input[name=from]", "2");
        await page.ClickAsync("#filters button[type=submit]");
        await page.WaitForURLAsync(new System.Text.RegularExpressions.Regex("env=math"));
        Assert.Equal(KeyOrder(all.Where(r => r.Environment == "math" && r.Step >= 2)), await TableKeys(page));
        Assert.Empty(log.Errors);

        double median = all.Select(r => r.Reward).Order().ElementAt(all.Count / 2);
        var task = all[all.Count / 2];
        var cases = new (string Query, Func<StoredRollout, bool> Match)[]
        {
            ("env=reasoning", r => r.Environment == "reasoning"),
            ("from=1&to=2", r => r.Step is >= 1 and <= 2),
            ($"rmin={median.ToString("R", CultureInfo.InvariantCulture)}", r => r.Reward >= median),
            ($"rmax={median.ToString("R", CultureInfo.InvariantCulture)}", r => r.Reward <= median),
            ("trunc=yes", r => r.Truncated),
            ("trunc=no", r => !r.Truncated),
            ("tmin=1&tmax=1", r => r.Turns == 1),
            ("lmin=5&lmax=10", r => r.GeneratedTokens is >= 5 and <= 10),
            ($"task={Q(task.TaskId)}", r => r.TaskId == task.TaskId),
            ($"q={Q(task.Messages[^1].Content.Length > 3 ? task.Messages[^1].Content[..3] : "zzzz-nothing")}",
                r => r.Messages.Any(m => (m.Content + "\n" + m.Reasoning).Contains(task.Messages[^1].Content.Length > 3 ? task.Messages[^1].Content[..3] : "zzzz-nothing", StringComparison.OrdinalIgnoreCase))),
        };
        foreach (var (query, match) in cases)
        {
            await page.GotoAsync($"{ui.BaseUrl}/rollouts?run={Q(UiFixture.RunId)}&size=200&{query}");
            var expected = KeyOrder(all.Where(match));
            Assert.True(expected.SequenceEqual(await TableKeys(page)), $"{query}: expected {expected.Count} rows");
            Assert.Equal(expected.Count.ToString(CultureInfo.InvariantCulture), await page.Locator("#total").TextContentAsync());
        }

        // Sorted by reward, largest first, a page of 25 at a time.
        await page.GotoAsync($"{ui.BaseUrl}/rollouts?run={Q(UiFixture.RunId)}&sort=reward&desc=yes&size=25&page=2");
        var byReward = all.OrderByDescending(r => r.Reward).ThenByDescending(r => r.Step).ThenByDescending(r => r.TaskId, StringComparer.Ordinal).ThenByDescending(r => r.SampleIndex)
            .Skip(25).Take(25).Select(r => (r.Step, r.TaskId, r.SampleIndex)).ToList();
        Assert.Equal(byReward, await TableKeys(page));
        Assert.Empty(log.Errors);
    }

    [Fact]
    public async Task TheTokenViewShowsOneElementPerGeneratedTokenWithTheStoredValues()
    {
        var r = (await AllRolloutsAsync()).OrderByDescending(x => x.GeneratedTokens).First();
        Assert.True(r.GeneratedTokens > 0);
        var log = await OpenAsync(RolloutUrl(r));
        var tokens = log.Page.Locator("#tokens .tok");
        Assert.Equal(r.GeneratedTokens, await tokens.CountAsync());
        var generated = Enumerable.Range(0, r.Tokens.Length).Where(i => r.Generated[i] != 0).ToList();
        var shown = await tokens.EvaluateAllAsync<string[][]>("els => els.map(e => [e.dataset.i, e.dataset.id, e.dataset.ls, e.title])");
        for (int k = 0; k < generated.Count; k++)
        {
            int i = generated[k];
            Assert.Equal(i.ToString(CultureInfo.InvariantCulture), shown[k][0]);
            Assert.Equal(r.Tokens[i].ToString(CultureInfo.InvariantCulture), shown[k][1]);
            Assert.Equal(BitConverter.SingleToInt32Bits(r.SamplerLogProbs[i]), BitConverter.SingleToInt32Bits(float.Parse(shown[k][2], CultureInfo.InvariantCulture)));
            Assert.Contains($"sampler log-prob {r.SamplerLogProbs[i].ToString("0.####", CultureInfo.InvariantCulture)}", shown[k][3]);
        }
        // Hovering shows the values (the title), and the colour class follows the probability.
        await tokens.First.HoverAsync();
        string cls = (await tokens.First.GetAttributeAsync("class"))!;
        Assert.Contains("p" + Math.Clamp((int)(Math.Exp(r.SamplerLogProbs[generated[0]]) * 10), 0, 9), cls.Split(' '));
        Assert.Empty(log.Errors);
    }

    [Fact]
    public async Task LiveUpdateShowsANewStepWithoutReload()
    {
        var log = await OpenAsync($"/run?id={Q(UiFixture.RunId)}");
        var last = log.Page.Locator("#last-step");
        await last.Filter(new() { HasTextRegex = new("^\\d+$") }).WaitForAsync();
        int step = int.Parse((await last.TextContentAsync())!, CultureInfo.InvariantCulture);
        await log.Page.Locator("#live").Filter(new() { HasText = "live" }).WaitForAsync();
        // A marker the page has to keep: a reload would lose it.
        await log.Page.EvaluateAsync("() => { window.__notReloaded = true; }");
        await using (var s = await ui.OpenStoreAsync())
            await s.PutStepMetricsAsync(UiFixture.RunId, step + 100, """{"stage":"grpo","reward_mean":0.5,"reward_by_env":{"math":0.75,"reasoning":0.25},"kl":0.01}""");
        try
        {
            await log.Page.Locator("#last-step").Filter(new() { HasText = (step + 100).ToString(CultureInfo.InvariantCulture) }).WaitForAsync(new() { Timeout = 15_000 });
            Assert.True(await log.Page.EvaluateAsync<bool>("() => window.__notReloaded === true"));
            Assert.Contains("0.75", await log.Page.Locator("#latest").TextContentAsync());
            Assert.Empty(log.Errors);
        }
        finally
        {
            // The run's store is shared by the collection's tests: leave it as the run wrote it.
            await using var s = await ui.OpenStoreAsync();
            await s.DeleteRolloutsAfterAsync(UiFixture.RunId, step);
        }
    }

    [Fact]
    public async Task TheJsonDownloadsRoundTrip()
    {
        var all = await AllRolloutsAsync();
        var r = all.OrderByDescending(x => x.GeneratedTokens).First();
        var log = await OpenAsync(RolloutUrl(r));
        var download = await log.Page.RunAndWaitForDownloadAsync(() => log.Page.ClickAsync("#download"));
        string path = Path.Combine(ui.Dir, "download.json");
        await download.SaveAsAsync(path);
        var back = JsonSerializer.Deserialize<StoredRollout>(File.ReadAllText(path), UiJson)!;
        TestRollouts.AssertSame(r, back);

        var group = all.Where(x => x.Step == r.Step && x.TaskId == r.TaskId).OrderBy(x => x.SampleIndex).ToList();
        var groupPage = await OpenAsync($"/group?run={Q(r.RunId)}&step={r.Step}&task={Q(r.TaskId)}");
        download = await groupPage.Page.RunAndWaitForDownloadAsync(() => groupPage.Page.ClickAsync("#download"));
        await download.SaveAsAsync(path);
        var groupBack = JsonSerializer.Deserialize<List<StoredRollout>>(File.ReadAllText(path), UiJson)!;
        Assert.Equal(group.Count, groupBack.Count);
        for (int i = 0; i < group.Count; i++) TestRollouts.AssertSame(group[i], groupBack[i]);
    }

    private static readonly JsonSerializerOptions UiJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    [Fact]
    public async Task InjectionInEveryFilterParameterIsRefusedOrMatchesNothing()
    {
        string[] payloads = ["' OR 1=1 --", "1; DROP TABLE gym_rollouts; --", "1) OR (1=1", "%", "<script>window.__xss=1</script>", "1e999", "NaN"];
        string[] numeric = ["from", "to", "rmin", "rmax", "amin", "amax", "tmin", "tmax", "lmin", "lmax", "page", "size"];
        string[] choices = ["trunc", "masked", "sort", "desc"];
        string[] text = ["env", "task"];
        long before;
        await using (var s = await ui.OpenStoreAsync()) before = await s.CountRolloutsAsync(UiFixture.RunId);
        foreach (string p in payloads)
        {
            foreach (string name in numeric.Concat(choices))
            {
                using var response = await ui.Http.GetAsync($"{ui.BaseUrl}/rollouts?run={Q(UiFixture.RunId)}&{name}={Q(p)}");
                string body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}={p}: HTTP {(int)response.StatusCode}");
                Assert.Contains($"parameter &#x27;{name}&#x27;", body);
                Assert.DoesNotContain("<script>window", body);
            }
            foreach (string name in text)
            {
                using var response = await ui.Http.GetAsync($"{ui.BaseUrl}/rollouts?run={Q(UiFixture.RunId)}&{name}={Q(p)}");
                string body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{name}={p}: HTTP {(int)response.StatusCode}");
                Assert.Contains("<b id=\"total\">0</b>", body);
                Assert.DoesNotContain("<script>window", body);
            }
            // The text search takes % literally: no conversation holds these strings.
            using (var response = await ui.Http.GetAsync($"{ui.BaseUrl}/rollouts?run={Q(UiFixture.RunId)}&q={Q(p + "\u0001")}"))
                Assert.Contains("<b id=\"total\">0</b>", await response.Content.ReadAsStringAsync());
            using (var response = await ui.Http.GetAsync($"{ui.BaseUrl}/rollouts?run={Q(p)}"))
                Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            using (var response = await ui.Http.GetAsync($"{ui.BaseUrl}/rollout?run={Q(UiFixture.RunId)}&step=1&task={Q(p)}&sample=0"))
                Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }
        await using (var s = await ui.OpenStoreAsync()) Assert.Equal(before, await s.CountRolloutsAsync(UiFixture.RunId));
    }

    [Fact]
    public void ANonLoopbackBindWithoutATokenOrAMissingStoreIsRefused()
    {
        var (code, output) = Nemotron.Gym.Cli.Tests.GymProcess.Run(ui.Dir, "ui", "--store", ui.RunFolder, "--host", "0.0.0.0", "--port", "0");
        Assert.Equal(2, code);
        Assert.Contains("--token", output);
        string missing = Path.Combine(ui.Dir, "no-such-run");
        (code, output) = Nemotron.Gym.Cli.Tests.GymProcess.Run(ui.Dir, "ui", "--store", missing, "--port", "0");
        Assert.Equal(2, code);
        Assert.Contains(missing, output);
        Assert.False(File.Exists(missing) || Directory.Exists(missing), "the UI creates nothing");
    }

    [Fact]
    public async Task WithATokenEveryRequestNeedsIt()
    {
        int port = Nemotron.Gym.TestSupport.Ports.Free();
        using var child = Nemotron.Gym.Cli.Tests.GymProcess.Start(ui.Dir, "ui", "--store", ui.StorePath, "--port", port.ToString(CultureInfo.InvariantCulture), "--token", "s3cret-token");
        await child.WaitForAsync("serving", TimeSpan.FromSeconds(60));
        string url = $"http://127.0.0.1:{port}";
        using (var response = await ui.Http.GetAsync(url + "/"))
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using (var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/metrics?run=" + UiFixture.RunId))
        {
            request.Headers.Add("X-Gym-Token", "wrong");
            using var response = await ui.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using (var request = new HttpRequestMessage(HttpMethod.Get, url + "/api/metrics?run=" + UiFixture.RunId))
        {
            request.Headers.Add("X-Gym-Token", "s3cret-token");
            using var response = await ui.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        // A page on another name that resolves here (DNS rebinding) is not served.
        using (var request = new HttpRequestMessage(HttpMethod.Get, url + "/"))
        {
            request.Headers.Host = "evil.example:" + port;
            request.Headers.Add("X-Gym-Token", "s3cret-token");
            using var response = await ui.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.MisdirectedRequest, response.StatusCode);
        }
        // In the browser: the login form sets the cookie, then pages load.
        var log = await ui.NewPageAsync();
        await log.Page.GotoAsync(url + "/");
        await log.Page.FillAsync("input[name=token]", "s3cret-token");
        await log.Page.ClickAsync("form button");
        await log.Page.Locator("#runs").WaitForAsync();
        Assert.Equal(UiFixture.RunId, await log.Page.Locator("#runs tbody tr td a").First.TextContentAsync());
        Assert.True(log.Errors.All(e => e.Contains("401")), string.Join("\n", log.Errors)); // the first, token-less load is the only failure
    }
}
