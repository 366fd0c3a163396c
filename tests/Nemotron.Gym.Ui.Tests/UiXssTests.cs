using Nemotron.Gym.Conversation;
using System.Globalization;
using Microsoft.Playwright;
using Nemotron.Gym.Cli.Tests;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Ui.Tests;

/// <summary>
/// A store whose every text field carries markup that would run script if a page used it as HTML: in rollouts
/// (messages, reasoning, tool calls and results), task ids, environment names, run ids, reasons, evidence, grade
/// components, config and metrics. Each payload sets window.__xss or opens a dialog when it runs.
/// </summary>
public sealed class XssFixture : IAsyncLifetime
{
    public static readonly string[] Payloads =
    [
        "<script>window.__xss=1</script>",
        "<img src=x onerror=\"window.__xss=2\">",
        "\"><svg onload=window.__xss=3>",
        "'><img src=x onerror=window.__xss=4>",
        "javascript:window.__xss=5",
        "<a href=\"javascript:window.__xss=6\" id=\"xss6\">click</a>",
        "<svg><script>window.__xss=7</script></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=8></style></mglyph></table></mtext></math>",
        "</pre><script>window.__xss=9</script><pre>",
        "</textarea></title></style><script>window.__xss=10</script>",
        "<details open ontoggle=window.__xss=11>",
        "<iframe srcdoc=\"<script>parent.__xss=12</script>\"></iframe>",
        "<body onload=window.__xss=13>",
        "<input autofocus onfocus=window.__xss=14>",
        "<video><source onerror=window.__xss=15></video>",
        "<object data=\"javascript:window.__xss=16\"></object>",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=17\">",
        "<base href=\"javascript:window.__xss=18//\">",
        "<style>*{background:url(\"javascript:window.__xss=19\")} #runs{display:none}</style>",
        "<div style=\"background-image:url(javascript:window.__xss=20);position:fixed;inset:0\">cover</div>",
        "\" style=\"position:fixed;inset:0\" onmouseover=\"window.__xss=21",
        "<think><img src=x onerror=window.__xss=22></think>",
        "<tool_call>{\"name\":\"<img src=x onerror=window.__xss=23>\"}</tool_call>",
        "{{constructor.constructor('window.__xss=24')()}}",
        "\u2028</script><script>alert(25)</script>",
        "<svg><animate onbegin=window.__xss=26 attributeName=x dur=1s>",
        "<link rel=import href=\"data:text/html,<script>window.__xss=27</script>\">",
        "<form action=\"javascript:window.__xss=28\"><button id=xss28>go</button></form>",
    ];

    public const string MainRun = "xss-main";
    public string Dir { get; } = Directory.CreateTempSubdirectory("gym-ui-xss-").FullName;
    public string BaseUrl { get; private set; } = "";
    /// <summary>Runs whose id is itself a payload.</summary>
    public IReadOnlyList<string> PayloadRuns => Payloads.Take(6).ToList();
    public List<StoredRollout> Rollouts { get; } = [];
    private GymProcess.Child? _ui;

    public async ValueTask InitializeAsync()
    {
        string path = Path.Combine(Dir, "rollouts.db");
        await using (var s = await RolloutStores.OpenAsync("sqlite:" + path))
        {
            var now = DateTimeOffset.UtcNow;
            for (int k = 0; k < Payloads.Length; k++)
            {
                string p = Payloads[k];
                var calls = new[] { new ToolCall(p, p, new System.Text.Json.Nodes.JsonObject { [p] = p }) };
                Rollouts.Add(new StoredRollout
                {
                    RunId = MainRun, Step = 1 + k % 2, TaskId = $"t{k}{p}", Environment = p, SampleIndex = 0,
                    Tokens = [1, 2, 3], Generated = [0, 1, 1], SamplerLogProbs = [0, -0.5f, -2f],
                    Messages =
                    [
                        // Roles are typed (a payload cannot be a role); every text field carries one.
                        Message.System(p), Message.User(p), Message.Assistant($"<think>{p}</think>{p}", p, calls), new(Role.Tool, p, ToolCallId: p, Name: p),
                        Message.Assistant($"<think>{p}"),
                    ],
                    Reward = k / (double)Payloads.Length, ShapedReward = 0, Components = new Dictionary<string, double> { [p] = 1 }, Reason = p,
                    Evidence = new Dictionary<string, string> { [p] = p, ["stdout"] = p + "\n" + new string('x', 400) }, Truncated = k % 2 == 0, Turns = 2,
                    GenerateSeconds = 0, EnvironmentSeconds = 0, CreatedAt = now, Advantage = 0.5, MaskedReason = k % 3 == 0 ? p : null,
                    TrainerLogProbs = [0, -0.4f, -2.5f], ImportanceWeights = [0, 1, 1], TokenMasked = [0, 0, 1], TokenTexts = [p, p, p],
                });
            }
            foreach (string run in PayloadRuns)
                Rollouts.Add(Rollouts[0] with { RunId = run, Environment = run });
            await s.AddRolloutsAsync(Rollouts);
            foreach (string run in PayloadRuns.Append(MainRun))
            {
                await s.PutRunAsync(new RunRecord(run, Payloads[3], 1, 2, "environments:\n  - {name: " + run + ", weight: 1}\nnote: " + string.Join("\n", Payloads), now, now));
                for (int step = 1; step <= 2; step++)
                {
                    var metrics = new System.Text.Json.Nodes.JsonObject { ["stage"] = Payloads[0], ["step"] = step, ["reward_mean"] = 0.5, ["kl"] = Payloads[1] };
                    var byEnv = new System.Text.Json.Nodes.JsonObject();
                    foreach (string p in Payloads.Take(8)) byEnv[p] = 0.25 * step;
                    metrics["reward_by_env"] = byEnv;
                    metrics[Payloads[2]] = Payloads[3];
                    await s.PutStepMetricsAsync(run, step, metrics.ToJsonString());
                }
            }
        }
        int port = Ports.Free();
        _ui = GymProcess.Start(Dir, "ui", "--store", path, "--port", port.ToString(CultureInfo.InvariantCulture));
        await _ui.WaitForAsync("serving", TimeSpan.FromSeconds(60));
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    public ValueTask DisposeAsync()
    {
        _ui?.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}

[Collection(UiCollection.Name)]
public sealed class UiXssTests(UiFixture ui, XssFixture xss) : IClassFixture<XssFixture>
{
    private static string Q(string s) => Uri.EscapeDataString(s);

    private PageLog? _log;

    /// <summary>Opens a page (one tab for the whole test), opens every fold, moves the mouse over it, and checks that nothing ran.</summary>
    private async Task<PageLog> VisitAsync(string path)
    {
        var log = _log ??= await ui.NewPageAsync();
        int errorsBefore = log.Errors.Count;
        var response = await log.Page.GotoAsync(xss.BaseUrl + path, new() { WaitUntil = WaitUntilState.Load });
        Assert.True(response is { Status: 200 }, $"{path}: HTTP {response?.Status}");
        // The dashboard draws from fetched data: wait until it has, so its labels are checked too.
        if (path.StartsWith("/run?", StringComparison.Ordinal)) await log.Page.Locator("#last-step").Filter(new() { HasTextRegex = new("^\\d+$") }).WaitForAsync();
        // Opening a fold fires its toggle event: a planted ontoggle handler would run.
        await log.Page.EvaluateAsync("() => document.querySelectorAll('details').forEach(d => d.open = true)");
        await log.Page.Mouse.MoveAsync(300, 300);
        await log.Page.Mouse.MoveAsync(700, 600);
        foreach (string id in new[] { "#xss6", "#xss28" })
            Assert.Equal(0, await log.Page.Locator(id).CountAsync()); // planted elements would exist only if markup got through
        var flag = await log.Page.EvaluateAsync<string?>("() => new Promise(r => setTimeout(() => r(window.__xss === undefined ? null : String(window.__xss)), 0))");
        Assert.True(flag == null, $"{path}: payload {flag} ran");
        Assert.True(log.Errors.Count == errorsBefore, $"{path}: {string.Join("; ", log.Errors.Skip(errorsBefore))}");
        return log;
    }

    [Fact]
    public async Task EveryPayloadIsShownAsTextAndNoScriptRuns()
    {
        Assert.True(XssFixture.Payloads.Length >= 20);
        var runs = await VisitAsync("/");
        string runsText = (await runs.Page.Locator("#runs").TextContentAsync())!;
        foreach (string run in xss.PayloadRuns) Assert.Contains(run, runsText);
        await VisitAsync($"/run?id={Q(XssFixture.MainRun)}");
        await VisitAsync($"/config?run={Q(XssFixture.MainRun)}");
        await VisitAsync($"/rollouts?run={Q(XssFixture.MainRun)}&size=100");
        foreach (string run in xss.PayloadRuns)
        {
            await VisitAsync($"/run?id={Q(run)}");
            await VisitAsync($"/rollouts?run={Q(run)}");
        }
        foreach (var r in xss.Rollouts.Where(r => r.RunId == XssFixture.MainRun))
        {
            var page = await VisitAsync($"/rollout?run={Q(r.RunId)}&step={r.Step}&task={Q(r.TaskId)}&sample=0");
            Assert.Equal(r.Reason, await page.Page.Locator("#reason").TextContentAsync());
            Assert.Equal(r.TaskId, await page.Page.Locator("h1 .task").TextContentAsync());
            await page.Page.Locator("input[value=ratio]").CheckAsync();
            await VisitAsync($"/group?run={Q(r.RunId)}&step={r.Step}&task={Q(r.TaskId)}");
            if (r.Step == 1) await VisitAsync($"/rollouts?run={Q(r.RunId)}&env={Q(r.Environment)}&q={Q(r.Reason)}&task={Q(r.TaskId)}");
        }
        var first = xss.Rollouts[0]; // the payload runs hold the same task
        await VisitAsync($"/compare?run={Q(first.RunId)}&step={first.Step}&task={Q(first.TaskId)}&run2={Q(xss.PayloadRuns[0])}&step2=1");
    }

    [Fact]
    public async Task TheTokenViewRecoloursByTrainerProbabilityAndRatioAndMarksMaskedTokens()
    {
        // Stored: sampler log-probs -0.5, -2; trainer -0.4, -2.5; the second token masked.
        var r = xss.Rollouts[1];
        var log = await VisitAsync($"/rollout?run={Q(r.RunId)}&step={r.Step}&task={Q(r.TaskId)}&sample=0");
        var tokens = log.Page.Locator("#tokens .tok");
        async Task<string[]> Classes() => [.. (await tokens.EvaluateAllAsync<string[]>("els => els.map(e => [...e.classList].filter(c => /^p/.test(c)).join(' '))"))];
        Assert.Equal(["p6", "p1"], await Classes()); // exp(-0.5) = 0.61, exp(-2) = 0.14
        await log.Page.Locator("input[value=trainer]").CheckAsync();
        Assert.Equal(["p6", "p0"], await Classes()); // exp(-0.4) = 0.67, exp(-2.5) = 0.08
        await log.Page.Locator("input[value=ratio]").CheckAsync();
        Assert.Equal(["p5", "p1"], await Classes()); // ratio 1.11 just above the middle, 0.61 well below it
        bool[] masked = await tokens.EvaluateAllAsync<bool[]>("els => els.map(e => e.classList.contains('masked'))");
        Assert.Equal(new[] { false, true }, masked);
        // Stored token texts are the labels (spaces made visible), as text.
        Assert.Equal(r.TokenTexts![1].Replace(' ', '·'), await tokens.Nth(0).TextContentAsync());
        Assert.Contains("IS weight 1", await tokens.Nth(1).GetAttributeAsync("title"));
        Assert.Contains("masked", await tokens.Nth(1).GetAttributeAsync("title"));
    }

    [Fact]
    public async Task PayloadsInTheQueryAreEchoedAsText()
    {
        foreach (string p in XssFixture.Payloads)
        {
            var log = await ui.NewPageAsync();
            await log.Page.GotoAsync($"{xss.BaseUrl}/rollouts?run={Q(XssFixture.MainRun)}&rmin={Q(p)}");
            Assert.Contains(p.Length > 80 ? p[..80] : p, await log.Page.Locator(".error").TextContentAsync());
            await log.Page.GotoAsync($"{xss.BaseUrl}/run?id={Q(p + "-missing")}");
            Assert.Contains(p, await log.Page.Locator(".error").TextContentAsync());
            Assert.Null(await log.Page.EvaluateAsync<string?>("() => window.__xss === undefined ? null : String(window.__xss)"));
            // The 400 and 404 responses are the only errors the console reports.
            Assert.True(log.Errors.All(e => e.Contains("40")), string.Join("; ", log.Errors));
        }
    }
}
