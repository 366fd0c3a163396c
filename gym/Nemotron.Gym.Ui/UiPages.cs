using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Nemotron.Gym.Conversation;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.Ui;

/// <summary>
/// The pages and their data endpoints. Everything the store holds is untrusted (model output, task text, environment
/// names, run ids): it reaches HTML only through <see cref="HtmlText"/>, reaches scripts only as JSON fetched from our
/// own endpoints (read with textContent), and reaches SQL only as parameters.
/// </summary>
internal sealed class UiPages(IRolloutBrowser store)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/", ctx => Page(ctx, RunsAsync));
        app.MapGet("/config", ctx => Page(ctx, ConfigAsync));
        app.MapGet("/run", ctx => Page(ctx, DashboardAsync));
        app.MapGet("/rollouts", ctx => Page(ctx, BrowserAsync));
        app.MapGet("/rollout", ctx => Page(ctx, RolloutAsync));
        app.MapGet("/group", ctx => Page(ctx, GroupAsync));
        app.MapGet("/compare", ctx => Page(ctx, CompareAsync));
        app.MapGet("/api/metrics", MetricsAsync);
        app.MapGet("/api/events", EventsAsync);
        app.MapGet("/api/rollout.json", RolloutJsonAsync);
        app.MapGet("/api/group.json", GroupJsonAsync);
    }

    // ---- plumbing ---------------------------------------------------------------------------------

    private static async Task Page(HttpContext ctx, Func<HttpContext, Task<Html>> render)
    {
        Html body;
        try { body = await render(ctx); }
        catch (BadQueryException e)
        {
            ctx.Response.StatusCode = 400;
            body = Layout("Bad request", H.T($"<h1>Bad request</h1><p class=\"error\">{e.Message}</p>"));
        }
        catch (NotFoundException e)
        {
            ctx.Response.StatusCode = 404;
            body = Layout("Not found", H.T($"<h1>Not found</h1><p class=\"error\">{e.Message}</p>"));
        }
        await WriteHtml(ctx, body);
    }

    public static async Task WriteHtml(HttpContext ctx, Html page)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-store";
        await ctx.Response.WriteAsync(page.Value);
    }

    private sealed class NotFoundException(string message) : Exception(message);

    private static Html Layout(string title, Html main, params string[] scripts) => H.T($"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{title} · gym ui</title>
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/static/uPlot.min.css"><link rel="stylesheet" href="/static/app.css"></head>
        <body><nav><a href="/" class="brand">Nemotron.Gym</a> <a href="/">runs</a></nav>
        <main>{main}</main>
        {Html.Join(scripts.Select(s => H.T($"<script src=\"/static/{s}\"></script>")))}
        </body></html>
        """);

    /// <summary>The login form shown when a token is needed.</summary>
    public static Html Login(bool failed) => Layout("Token", H.T($"""
        <h1>This UI needs its token</h1>
        {(failed ? H.T($"<p class=\"error\">That is not the token.</p>") : Html.Empty)}
        <form method="post" action="/login"><label>token <input type="password" name="token" autocomplete="current-password"></label> <button>open</button></form>
        <p>Scripts can send it as the <code>{UiServer.TokenHeader}</code> header instead.</p>
        """));

    private static string RunLink(string run) => "/run?" + H.Query(("id", run));
    private static string RolloutLink(string run, int step, string task, int sample) => "/rollout?" + H.Query(("run", run), ("step", step), ("task", task), ("sample", sample));
    private static string GroupLink(string run, int step, string task) => "/group?" + H.Query(("run", run), ("step", step), ("task", task));

    private async Task<RunRecord> FindRun(string runId, CancellationToken ct) =>
        (await store.ListRunsAsync(ct)).FirstOrDefault(r => r.RunId == runId) ?? throw new NotFoundException($"no run '{runId}' in this store");

    private static JsonObject? ParseMetrics(string json)
    {
        try { return JsonNode.Parse(json) as JsonObject; }
        catch (JsonException) { return null; }
    }

    private static double? Number(JsonNode? n) => n is JsonValue v && v.TryGetValue(out double d) ? d : null;

    // ---- runs -----------------------------------------------------------------------------------

    private async Task<Html> RunsAsync(HttpContext ctx)
    {
        var ct = ctx.RequestAborted;
        var rows = new List<Html>();
        foreach (var run in (await store.ListRunsAsync(ct)).Reverse())
        {
            var metrics = new List<JsonObject>();
            await foreach (var (_, json) in store.ReadStepMetricsAsync(run.RunId, int.MinValue, ct))
                if (ParseMetrics(json) is { } m) metrics.Add(m);
            var last = metrics.LastOrDefault()?["reward_by_env"] as JsonObject;
            var envs = await store.EnvironmentsAsync(run.RunId, ct);
            var weights = EnvironmentWeights(run.ConfigYaml);
            long count = await store.CountRolloutsAsync(run.RunId, ct);
            var lastReward = last == null ? Html.Empty
                : Html.Join(last.Select(kv => H.T($"<div><span class=\"env\">{kv.Key}</span> {H.Num(Number(kv.Value))}</div>")));
            rows.Add(H.T($"""
                <tr><td><a href="{RunLink(run.RunId)}">{run.RunId}</a></td><td><span class="status">{run.Status}</span></td>
                <td>{run.Step}/{run.TotalSteps}</td><td>{count}</td>
                <td>{Html.Join(envs.Select(e => H.T($"<div><span class=\"env\">{e}</span>{(weights.TryGetValue(e, out var w) ? H.T($" ×{w}") : Html.Empty)}</div>")))}</td>
                <td>{lastReward}</td><td>{Sparkline(metrics.Select(m => Number(m["reward_mean"])).ToList())}</td>
                <td>{run.Created.ToUniversalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)}</td>
                <td>{run.Updated.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}</td>
                <td>{(run.ConfigYaml.Length > 0 ? H.T($"<a href=\"/config?{H.Query(("run", run.RunId))}\">config</a>") : Html.Empty)}
                 · <a href="/rollouts?{H.Query(("run", run.RunId))}">rollouts</a></td></tr>
                """));
        }
        return Layout("Runs", H.T($"""
            <h1>Runs</h1>
            <table class="grid" id="runs"><thead><tr><th>run</th><th>status</th><th>step</th><th>rollouts</th><th>environments</th>
            <th>last reward</th><th>mean reward</th><th>started (UTC)</th><th>updated (UTC)</th><th></th></tr></thead>
            <tbody>{Html.Join(rows)}</tbody></table>
            {(rows.Count == 0 ? H.T($"<p>This store holds no runs yet.</p>") : Html.Empty)}
            """));
    }

    /// <summary>The blend weights in a run's YAML (<c>- {name: math, weight: 2, ...}</c> or the block form), for display only.</summary>
    private static Dictionary<string, string> EnvironmentWeights(string yaml)
    {
        var weights = new Dictionary<string, string>(StringComparer.Ordinal);
        string? name = null;
        foreach (var raw in yaml.Split('\n'))
        {
            foreach (var part in raw.Replace("{", ",").Replace("}", ",").Replace("- ", ",").Split(','))
            {
                var kv = part.Split(':', 2);
                if (kv.Length != 2) continue;
                string key = kv[0].Trim(), value = kv[1].Trim().Trim('"', '\'');
                if (key == "name") name = value;
                else if (key == "weight" && name != null) weights[name] = value;
            }
        }
        return weights;
    }

    /// <summary>A small line of values as inline SVG drawn from numbers only (no text from the store goes in).</summary>
    private static Html Sparkline(IReadOnlyList<double?> values)
    {
        var points = values.Select((v, i) => (i, v)).Where(p => p.v is { } d && double.IsFinite(d)).Select(p => (p.i, v: p.v!.Value)).ToList();
        if (points.Count < 2) return Html.Empty;
        double lo = points.Min(p => p.v), hi = points.Max(p => p.v), span = hi > lo ? hi - lo : 1;
        int n = values.Count - 1;
        var sb = new StringBuilder();
        foreach (var (i, v) in points)
            sb.Append(CultureInfo.InvariantCulture, $"{100.0 * i / n:0.#},{22 - 20 * (v - lo) / span:0.#} ");
        return H.T($"<svg class=\"spark\" viewBox=\"0 0 100 24\" preserveAspectRatio=\"none\" aria-label=\"reward mean per step\"><polyline points=\"{sb.ToString().Trim()}\"/></svg>");
    }

    private async Task<Html> ConfigAsync(HttpContext ctx)
    {
        var run = await FindRun(Query.Required(ctx.Request, "run"), ctx.RequestAborted);
        return Layout("Config", H.T($"<h1>Config of <a href=\"{RunLink(run.RunId)}\">{run.RunId}</a></h1><pre class=\"code\">{run.ConfigYaml}</pre>"));
    }

    // ---- dashboard ------------------------------------------------------------------------------

    private async Task<Html> DashboardAsync(HttpContext ctx)
    {
        var run = await FindRun(Query.Required(ctx.Request, "id"), ctx.RequestAborted);
        return Layout(run.RunId, H.T($"""
            <h1>Run <span id="run-id">{run.RunId}</span></h1>
            <p><span class="status">{run.Status}</span> · step {run.Step}/{run.TotalSteps} · last step with metrics: <b id="last-step">–</b> ·
            <a href="/rollouts?{H.Query(("run", run.RunId))}">rollouts</a>{(run.ConfigYaml.Length > 0 ? H.T($" · <a href=\"/config?{H.Query(("run", run.RunId))}\">config</a>") : Html.Empty)}
            · <span id="live">connecting…</span></p>
            <p class="hint">Drag across a chart to zoom, double-click to zoom out; hover for values.</p>
            <div id="dashboard" data-run="{run.RunId}"></div>
            <h2>Latest step</h2><table class="grid" id="latest"><tbody></tbody></table>
            """), "uPlot.iife.min.js", "dashboard.js");
    }

    /// <summary>The steps' metrics as one JSON array of objects, each with its step.</summary>
    private async Task MetricsAsync(HttpContext ctx)
    {
        string run;
        int after;
        try { (run, after) = (Query.Required(ctx.Request, "run"), Query.Int(ctx.Request, "after") ?? int.MinValue); }
        catch (BadQueryException e) { await Problem(ctx, 400, e.Message); return; }
        var all = new JsonArray();
        await foreach (var (step, json) in store.ReadStepMetricsAsync(run, after, ctx.RequestAborted)) all.Add(StepObject(step, json));
        ctx.Response.ContentType = "application/json; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-store";
        await ctx.Response.WriteAsync(all.ToJsonString());
    }

    private static JsonObject StepObject(int step, string json)
    {
        var m = ParseMetrics(json) ?? new JsonObject { ["unreadable"] = true };
        m["step"] = step; // the store's key wins over whatever the JSON says
        return m;
    }

    /// <summary>Server-sent events: each new step's metrics as it is stored, polled once a second (the store has no notifications).</summary>
    private async Task EventsAsync(HttpContext ctx)
    {
        string run;
        int after;
        try { (run, after) = (Query.Required(ctx.Request, "run"), Query.Int(ctx.Request, "after") ?? int.MinValue); }
        catch (BadQueryException e) { await Problem(ctx, 400, e.Message); return; }
        var ct = ctx.RequestAborted;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-store";
        await ctx.Response.WriteAsync(": connected\n\n", ct);
        await ctx.Response.Body.FlushAsync(ct);
        var quietSince = DateTime.UtcNow;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                bool sent = false;
                await foreach (var (step, json) in store.ReadStepMetricsAsync(run, after, ct))
                {
                    await ctx.Response.WriteAsync($"event: step\ndata: {StepObject(step, json).ToJsonString()}\n\n", ct);
                    after = step;
                    sent = true;
                }
                if (!sent && DateTime.UtcNow - quietSince > TimeSpan.FromSeconds(15)) { await ctx.Response.WriteAsync(": still here\n\n", ct); sent = true; }
                if (sent) { await ctx.Response.Body.FlushAsync(ct); quietSince = DateTime.UtcNow; }
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private static async Task Problem(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await ctx.Response.WriteAsync(new JsonObject { ["error"] = message }.ToJsonString());
    }

    // ---- rollout browser ------------------------------------------------------------------------

    private static readonly int[] PageSizes = [25, 50, 100, 200];

    private async Task<Html> BrowserAsync(HttpContext ctx)
    {
        var q = ctx.Request;
        var run = await FindRun(Query.Required(q, "run"), ctx.RequestAborted);
        int size = Query.Int(q, "size") ?? 50;
        if (!PageSizes.Contains(size)) throw new BadQueryException($"parameter 'size': {size} is not one of {string.Join(", ", PageSizes)}");
        int page = Query.Int(q, "page") ?? 1;
        if (page < 1 || page > 1_000_000) throw new BadQueryException($"parameter 'page': {page} is out of range");
        var filter = new RolloutFilter
        {
            RunId = run.RunId, Environment = Query.Text(q, "env"), FromStep = Query.Int(q, "from"), ToStep = Query.Int(q, "to"),
            MinReward = Query.Real(q, "rmin"), MaxReward = Query.Real(q, "rmax"), MinAdvantage = Query.Real(q, "amin"), MaxAdvantage = Query.Real(q, "amax"),
            Truncated = Query.YesNo(q, "trunc"), Masked = Query.YesNo(q, "masked"), MinTurns = Query.Int(q, "tmin"), MaxTurns = Query.Int(q, "tmax"),
            MinLength = Query.Int(q, "lmin"), MaxLength = Query.Int(q, "lmax"), Text = Query.Text(q, "q"), TaskId = Query.Text(q, "task"),
            Sort = Query.Choice(q, "sort", RolloutSort.Step), Descending = Query.YesNo(q, "desc") ?? false,
            Offset = (page - 1) * size, Limit = size,
        };
        var result = await store.ReadRolloutPageAsync(filter, ctx.RequestAborted);
        var envs = await store.EnvironmentsAsync(run.RunId, ctx.RequestAborted);

        // The filter's own fields as query pairs, for the paging links.
        (string, object?)[] kept = [.. new[] { "run", "env", "from", "to", "rmin", "rmax", "amin", "amax", "trunc", "masked", "tmin", "tmax", "lmin", "lmax", "q", "task", "sort", "desc", "size" }
            .Select(n => (n, (object?)Query.Text(q, n)))];
        string PageLink(int p) => "/rollouts?" + H.Query([.. kept, ("page", p)]);
        Html Field(string name, string label, string type = "number", string step = "any") =>
            H.T($"<label>{label} <input name=\"{name}\" type=\"{type}\" step=\"{step}\" value=\"{Query.Text(q, name)}\"></label>");
        Html Select(string name, string label, IEnumerable<(string Value, string Text)> options) => H.T($"""
            <label>{label} <select name="{name}">{Html.Join(options.Select(o => H.T($"<option value=\"{o.Value}\"{(Query.Text(q, name) == o.Value ? H.T($" selected") : Html.Empty)}>{o.Text}</option>")))}</select></label>
            """);
        (string, string)[] anyYesNo = [("any", "any"), ("yes", "yes"), ("no", "no")];

        var rows = result.Rows.Select(r => H.T($"""
            <tr><td>{r.Step}</td><td><a class="task" href="{GroupLink(r.RunId, r.Step, r.TaskId)}">{r.TaskId}</a></td>
            <td><a class="sample" href="{RolloutLink(r.RunId, r.Step, r.TaskId, r.SampleIndex)}">#{r.SampleIndex}</a></td><td><span class="env">{r.Environment}</span></td>
            <td class="num reward">{H.Num(r.Reward)}</td><td class="num">{H.Num(r.ShapedReward)}</td><td class="num">{H.Num(r.Advantage)}</td>
            <td>{(r.Truncated ? "yes" : "")}</td><td class="num">{r.Turns}</td><td class="num">{r.GeneratedTokens}</td><td>{r.MaskedReason}</td>
            <td class="reason">{Clip(r.Reason, 140)}</td></tr>
            """));
        int pages = (int)Math.Max(1, (result.Total + size - 1) / size);
        bool more = result.TotalIsAtLeast ? result.Rows.Count == size : page < pages;
        return Layout("Rollouts", H.T($"""
            <h1>Rollouts of <a href="{RunLink(run.RunId)}">{run.RunId}</a></h1>
            <form method="get" action="/rollouts" id="filters" class="filters">
            <input type="hidden" name="run" value="{run.RunId}">
            {Select("env", "environment", [("", "all"), .. envs.Select(e => (e, e))])}
            {Field("from", "steps from", step: "1")}{Field("to", "to", step: "1")}
            {Field("rmin", "reward ≥")}{Field("rmax", "reward ≤")}{Field("amin", "advantage ≥")}{Field("amax", "advantage ≤")}
            {Select("trunc", "truncated", anyYesNo)}{Select("masked", "masked", anyYesNo)}
            {Field("tmin", "turns ≥", step: "1")}{Field("tmax", "turns ≤", step: "1")}{Field("lmin", "length ≥", step: "1")}{Field("lmax", "length ≤", step: "1")}
            {Field("q", "text", "search")}{Field("task", "task id", "text")}
            {Select("sort", "sort by", Enum.GetNames<RolloutSort>().Select(n => (n.ToLowerInvariant(), n.ToLowerInvariant())))}
            {Select("desc", "order", [("no", "ascending"), ("yes", "descending")])}
            {Select("size", "per page", PageSizes.Select(s => (s.ToString(CultureInfo.InvariantCulture), s.ToString(CultureInfo.InvariantCulture))))}
            <button type="submit">filter</button> <a href="/rollouts?{H.Query(("run", run.RunId))}">clear</a>
            </form>
            <p><b id="total">{(result.TotalIsAtLeast ? $"{result.Total:N0}+" : result.Total.ToString(CultureInfo.InvariantCulture))}</b> rollouts match
            {(result.TotalIsAtLeast ? H.T($"(counting stops there) · page {page}") : H.T($" · page {page} of {pages}"))}
            {(page > 1 ? H.T($" · <a href=\"{PageLink(page - 1)}\" rel=\"prev\">previous</a>") : Html.Empty)}
            {(more ? H.T($" · <a href=\"{PageLink(page + 1)}\" rel=\"next\">next</a>") : Html.Empty)}</p>
            <table class="grid" id="rollouts"><thead><tr><th>step</th><th>task (group)</th><th>sample</th><th>environment</th><th>reward</th><th>shaped</th>
            <th>advantage</th><th>truncated</th><th>turns</th><th>length</th><th>masked</th><th>reason</th></tr></thead>
            <tbody>{Html.Join(rows)}</tbody></table>
            """));
    }

    private static string Clip(string s, int n) => s.Length <= n ? s : s[..n] + "…";

    // ---- one rollout ----------------------------------------------------------------------------

    private async Task<StoredRollout> FindRollout(HttpRequest q, CancellationToken ct)
    {
        string run = Query.Required(q, "run"), task = Query.Required(q, "task");
        int step = Query.RequiredInt(q, "step"), sample = Query.RequiredInt(q, "sample");
        return await store.ReadRolloutAsync(run, step, task, sample, ct) ?? throw new NotFoundException($"no rollout {run}/{step}/{task}/#{sample} in this store");
    }

    private async Task<Html> RolloutAsync(HttpContext ctx)
    {
        var r = await FindRollout(ctx.Request, ctx.RequestAborted);
        string json = "/api/rollout.json?" + H.Query(("run", r.RunId), ("step", r.Step), ("task", r.TaskId), ("sample", r.SampleIndex));
        return Layout($"Rollout {r.TaskId} #{r.SampleIndex}", H.T($"""
            <h1>Rollout <span class="task">{r.TaskId}</span> #{r.SampleIndex}</h1>
            <p>run <a href="{RunLink(r.RunId)}">{r.RunId}</a> · step {r.Step} · <span class="env">{r.Environment}</span> ·
            <a href="{GroupLink(r.RunId, r.Step, r.TaskId)}">its group</a> · <a href="/rollouts?{H.Query(("run", r.RunId), ("task", r.TaskId))}">this task at every step</a> ·
            <a href="{json}" download id="download">JSON</a></p>
            {Grade(r)}
            <h2>Conversation</h2>
            <div class="conversation">{Html.Join(r.Messages.Select(Message))}</div>
            <h2>Generated tokens</h2>
            {TokenView(r)}
            """), "tokens.js");
    }

    private static Html Grade(StoredRollout r) => H.T($"""
        <h2>Grade</h2>
        <table class="grid kv" id="grade"><tbody>
        <tr><th>reward</th><td class="num" id="reward">{H.Num(r.Reward)}</td></tr>
        <tr><th>shaped reward</th><td class="num">{H.Num(r.ShapedReward)}</td></tr>
        <tr><th>advantage</th><td class="num">{H.Num(r.Advantage)}</td></tr>
        <tr><th>truncated</th><td>{(r.Truncated ? "yes" : "no")}</td></tr>
        <tr><th>turns · generated tokens</th><td>{r.Turns} · {r.GeneratedTokens}</td></tr>
        {(r.SequenceMasked != null || r.MaskedReason != null ? H.T($"<tr><th>masked</th><td id=\"masked\">{(r.SequenceMasked == true ? "sequence masked" : r.SequenceMasked == false ? "not masked" : "")} {r.MaskedReason}</td></tr>") : Html.Empty)}
        <tr><th>time</th><td>generate {H.Num(r.GenerateSeconds)} s · environment {H.Num(r.EnvironmentSeconds)} s</td></tr>
        {Html.Join(r.Components.Select(kv => H.T($"<tr><th>component <span class=\"component\">{kv.Key}</span></th><td class=\"num\">{H.Num(kv.Value)}</td></tr>")))}
        </tbody></table>
        <h3>Reason</h3><pre class="text" id="reason">{r.Reason}</pre>
        {(r.Evidence.Count == 0 ? Html.Empty : H.T($"<h3>Evidence</h3><div id=\"evidence\">{Html.Join(r.Evidence.Select(Evidence))}</div>"))}
        """);

    // Long values and sandbox output are folded; short ones are shown as they are.
    private static Html Evidence(KeyValuePair<string, string> kv)
    {
        bool fold = kv.Value.Length > 300 || kv.Value.Count(c => c == '\n') > 6 || kv.Key.Contains("stdout", StringComparison.OrdinalIgnoreCase) || kv.Key.Contains("stderr", StringComparison.OrdinalIgnoreCase);
        return fold
            ? H.T($"<details class=\"evidence\"><summary>{kv.Key} ({kv.Value.Length} chars)</summary><pre class=\"text\">{kv.Value}</pre></details>")
            : H.T($"<div class=\"evidence\"><span class=\"key\">{kv.Key}</span><pre class=\"text\">{kv.Value}</pre></div>");
    }


    private static Html Message(Message m)
    {
        string role = Conversation.Message.RoleName(m.Role);
        var parts = new List<Html>();
        if (m.Reasoning is { Length: > 0 } reasoning) parts.Add(Think(reasoning));
        // <think>…</think> inside the content is the model's reasoning: folded, the rest shown.
        string content = m.Content;
        while (m.Role == Role.Assistant && content.IndexOf("<think>", StringComparison.Ordinal) is int open and >= 0)
        {
            int close = content.IndexOf("</think>", open, StringComparison.Ordinal);
            if (open > 0) parts.Add(H.T($"<pre class=\"text\">{content[..open]}</pre>"));
            if (close < 0) { parts.Add(Think(content[(open + 7)..])); content = ""; break; }
            parts.Add(Think(content[(open + 7)..close]));
            content = content[(close + 8)..];
        }
        if (content.Length > 0)
            parts.Add(m.Role == Role.Tool && (content.Length > 600 || content.Count(c => c == '\n') > 10)
                ? H.T($"<details><summary>tool output ({content.Length} chars)</summary><pre class=\"text\">{content}</pre></details>")
                : H.T($"<pre class=\"text\">{content}</pre>"));
        if (m.ToolCalls is { Count: > 0 } calls) parts.Add(ToolCalls(calls));
        return H.T($"""
            <section class="msg {role}"><header>{role}{(m.ToolCallId != null ? H.T($" <span class=\"callid\">(result of {m.ToolCallId})</span>") : Html.Empty)}</header>{Html.Join(parts)}</section>
            """);
    }

    private static Html Think(string text) => H.T($"<details class=\"think\"><summary>reasoning ({text.Length} chars)</summary><pre class=\"text\">{text}</pre></details>");

    private static Html ToolCalls(IReadOnlyList<ToolCall> calls) => Html.Join(calls.Select(c =>
        H.T($"<div class=\"toolcall\"><span class=\"key\">call</span> <b>{c.Name}</b><pre class=\"text\">{c.Arguments.ToJsonString(Indented)}</pre></div>")));

    /// <summary>
    /// One element per generated token. Colour classes come from the sampler's log-probability (scripts switch to the
    /// trainer's or to their ratio from the data attributes); masked tokens are marked. Ids only: the store keeps no tokenizer.
    /// </summary>
    private static Html TokenView(StoredRollout r)
    {
        int n = r.Tokens.Length;
        var sb = new List<Html>();
        for (int i = 0; i < n; i++)
        {
            if (i >= r.Generated.Length || r.Generated[i] == 0) continue;
            float ls = i < r.SamplerLogProbs.Length ? r.SamplerLogProbs[i] : float.NaN;
            float? lt = r.TrainerLogProbs is { } t && i < t.Length ? t[i] : null;
            float? w = r.ImportanceWeights is { } iw && i < iw.Length ? iw[i] : null;
            bool masked = r.TokenMasked is { } tm && i < tm.Length && tm[i] != 0;
            string title = $"token {r.Tokens[i]} at {i} · sampler log-prob {ls.ToString("0.####", CultureInfo.InvariantCulture)} (p {Math.Exp(ls).ToString("0.###", CultureInfo.InvariantCulture)})"
                + (lt is { } a ? $" · trainer log-prob {a.ToString("0.####", CultureInfo.InvariantCulture)} · ratio {Math.Exp(a - ls).ToString("0.###", CultureInfo.InvariantCulture)}" : "")
                + (w is { } ww ? $" · IS weight {ww.ToString("0.###", CultureInfo.InvariantCulture)}" : "") + (masked ? " · masked" : "");
            sb.Add(H.T($"<span class=\"tok {Bucket(ls)}{(masked ? " masked" : "")}\" data-i=\"{i}\" data-id=\"{r.Tokens[i]}\" data-ls=\"{ls.ToString("R", CultureInfo.InvariantCulture)}\"{(lt is { } x ? H.T($" data-lt=\"{x.ToString("R", CultureInfo.InvariantCulture)}\"") : Html.Empty)}{(w is { } y ? H.T($" data-w=\"{y.ToString("R", CultureInfo.InvariantCulture)}\"") : Html.Empty)} title=\"{title}\">{TokenLabel(r, i)}</span>"));
        }
        bool hasTrainer = r.TrainerLogProbs != null;
        return H.T($"""
            <p class="tokmodes">colour by <label><input type="radio" name="tokmode" value="sampler" checked> sampler probability</label>
            {(hasTrainer ? H.T($"<label><input type=\"radio\" name=\"tokmode\" value=\"trainer\"> trainer probability</label> <label><input type=\"radio\" name=\"tokmode\" value=\"ratio\"> trainer / sampler ratio</label>") : H.T($"<span class=\"hint\">(no trainer log-probabilities stored for this rollout)</span>"))}
            · <span id="token-count">{sb.Count}</span> generated tokens{(r.TokenTexts == null ? " (shown by id: no token texts stored)" : "")}; hover for values</p>
            <div id="tokens" class="tokens{(r.SequenceMasked == true ? " seqmasked" : "")}">{Html.Join(sb)}</div>
            """);
    }

    /// <summary>A token's text when stored (whitespace made visible, so a space or newline token is not an empty box), else its id.</summary>
    private static string TokenLabel(StoredRollout r, int i)
    {
        if (r.TokenTexts is not { } texts || i >= texts.Length || texts[i] is not { } text) return r.Tokens[i].ToString(CultureInfo.InvariantCulture);
        return text.Length == 0 ? "∅" : text.Replace(' ', '·').Replace("\n", "↵").Replace("\t", "→");
    }

    /// <summary>One of ten colour classes by probability (p0: below 0.1 … p9: 0.9 and above).</summary>
    internal static string Bucket(double logProb)
    {
        double p = Math.Exp(logProb);
        return double.IsFinite(p) ? "p" + Math.Clamp((int)(p * 10), 0, 9).ToString(CultureInfo.InvariantCulture) : "pnan";
    }

    // ---- group and compare ------------------------------------------------------------------------

    private async Task<IReadOnlyList<StoredRollout>> FindGroup(HttpRequest q, string runKey, string stepKey, CancellationToken ct)
    {
        string run = Query.Required(q, runKey), task = Query.Required(q, "task");
        int step = Query.RequiredInt(q, stepKey);
        var group = await store.ReadGroupAsync(run, step, task, ct);
        return group.Count > 0 ? group : throw new NotFoundException($"no rollouts of task '{task}' at step {step} of run '{run}'");
    }

    private async Task<Html> GroupAsync(HttpContext ctx)
    {
        var group = await FindGroup(ctx.Request, "run", "step", ctx.RequestAborted);
        var first = group[0];
        string json = "/api/group.json?" + H.Query(("run", first.RunId), ("step", first.Step), ("task", first.TaskId));
        var runs = await store.ListRunsAsync(ctx.RequestAborted);
        return Layout($"Group {first.TaskId}", H.T($"""
            <h1>Group <span class="task">{first.TaskId}</span> at step {first.Step}</h1>
            <p>run <a href="{RunLink(first.RunId)}">{first.RunId}</a> · <span class="env">{first.Environment}</span> · {group.Count} samples ·
            reward mean {H.Num(group.Average(r => r.Reward))} · <a href="{json}" download id="download">JSON</a></p>
            <form method="get" action="/compare" class="filters"><input type="hidden" name="run" value="{first.RunId}"><input type="hidden" name="step" value="{first.Step}">
            <input type="hidden" name="task" value="{first.TaskId}">compare with
            <label>run <select name="run2">{Html.Join(runs.Select(x => H.T($"<option{(x.RunId == first.RunId ? H.T($" selected") : Html.Empty)}>{x.RunId}</option>")))}</select></label>
            <label>step <input type="number" name="step2" step="1" value="{first.Step}"></label> <button>compare</button></form>
            {GroupColumns(group)}
            """));
    }

    private static Html GroupColumns(IReadOnlyList<StoredRollout> group) => H.T($"""
        <div class="side-by-side">{Html.Join(group.Select(r => H.T($"""
            <article class="sample"><header><a href="{RolloutLink(r.RunId, r.Step, r.TaskId, r.SampleIndex)}">#{r.SampleIndex}</a>
            reward <b>{H.Num(r.Reward)}</b> · shaped {H.Num(r.ShapedReward)} · advantage {H.Num(r.Advantage)}{(r.Truncated ? " · truncated" : "")}{(r.MaskedReason != null ? H.T($" · masked: {r.MaskedReason}") : Html.Empty)}</header>
            <pre class="text reason">{r.Reason}</pre>
            {Html.Join(r.Messages.Where(m => m.Role == Role.Assistant).Select(Message))}
            </article>
            """)))}</div>
        """);

    private async Task<Html> CompareAsync(HttpContext ctx)
    {
        var left = await FindGroup(ctx.Request, "run", "step", ctx.RequestAborted);
        var right = await FindGroup(ctx.Request, "run2", "step2", ctx.RequestAborted);
        Html Column(IReadOnlyList<StoredRollout> g) => H.T($"""
            <div class="compare-col"><h2><a href="{RunLink(g[0].RunId)}">{g[0].RunId}</a> step {g[0].Step}</h2>
            <p>reward mean {H.Num(g.Average(r => r.Reward))} over {g.Count} samples · <a href="{GroupLink(g[0].RunId, g[0].Step, g[0].TaskId)}">group</a></p>
            {GroupColumns(g)}</div>
            """);
        return Layout("Compare", H.T($"""
            <h1>Task <span class="task">{left[0].TaskId}</span>: two groups</h1>
            <div class="compare">{Column(left)}{Column(right)}</div>
            """));
    }

    // ---- JSON downloads -----------------------------------------------------------------------------

    private async Task RolloutJsonAsync(HttpContext ctx)
    {
        StoredRollout r;
        try { r = await FindRollout(ctx.Request, ctx.RequestAborted); }
        catch (BadQueryException e) { await Problem(ctx, 400, e.Message); return; }
        catch (NotFoundException e) { await Problem(ctx, 404, e.Message); return; }
        await Download(ctx, $"rollout-step{r.Step}-sample{r.SampleIndex}.json", JsonSerializer.Serialize(r, Indented));
    }

    private async Task GroupJsonAsync(HttpContext ctx)
    {
        IReadOnlyList<StoredRollout> g;
        try { g = await FindGroup(ctx.Request, "run", "step", ctx.RequestAborted); }
        catch (BadQueryException e) { await Problem(ctx, 400, e.Message); return; }
        catch (NotFoundException e) { await Problem(ctx, 404, e.Message); return; }
        await Download(ctx, $"group-step{g[0].Step}.json", JsonSerializer.Serialize(g, Indented));
    }

    private static async Task Download(HttpContext ctx, string fileName, string json)
    {
        ctx.Response.ContentType = "application/json; charset=utf-8";
        // A fixed, safe file name: task ids can hold anything.
        ctx.Response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
        await ctx.Response.WriteAsync(json);
    }
}
