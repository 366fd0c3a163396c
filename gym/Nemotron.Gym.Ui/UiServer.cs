using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Nemotron.Gym.Store;

namespace Nemotron.Gym.Ui;

/// <summary>How <c>gym ui</c> serves a store.</summary>
/// <param name="Store">The store's connection text (<c>sqlite:PATH</c>, <c>PATH.db</c> or <c>postgres:...</c>).</param>
/// <param name="Host">The address to bind: a loopback one by default; any other needs <paramref name="Token"/>.</param>
/// <param name="Port">The TCP port (0: any free one).</param>
/// <param name="Token">The secret every request must carry (header or cookie); null on loopback means none.</param>
public sealed record UiOptions(string Store, string Host = "127.0.0.1", int Port = 5080, string? Token = null);

/// <summary>
/// The web UI: server-rendered pages over a rollout store opened read-only, small scripts for charts and the token
/// view, a strict Content-Security-Policy, and a token check when it listens beyond loopback.
/// </summary>
public sealed class UiServer : IAsyncDisposable
{
    /// <summary>The header that carries the token (an <c>Authorization: Bearer</c> header or the cookie work too).</summary>
    public const string TokenHeader = "X-Gym-Token";
    /// <summary>The cookie the login form sets.</summary>
    public const string TokenCookie = "gym_token";

    // Scripts and styles come only from our own origin; nothing inline, no eval, no framing, no plugins.
    private const string ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private readonly WebApplication _app;
    private readonly IRolloutBrowser _store;

    /// <summary>Where it listens, e.g. <c>http://127.0.0.1:5080</c>.</summary>
    public string Address { get; }

    private UiServer(WebApplication app, IRolloutBrowser store, string address) => (_app, _store, Address) = (app, store, address);

    /// <summary>Whether <paramref name="host"/> names only this machine.</summary>
    public static bool IsLoopback(string host) =>
        host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>Opens the store read-only and starts listening.</summary>
    /// <exception cref="ArgumentException">A non-loopback host without a token, an address that does not parse, or a bad store text.</exception>
    public static async Task<UiServer> StartAsync(UiOptions options, CancellationToken ct = default)
    {
        bool loopback = IsLoopback(options.Host);
        if (!loopback && string.IsNullOrEmpty(options.Token))
            throw new ArgumentException($"--host {options.Host}: listening beyond loopback needs --token, so that only people who know it can read the rollouts");
        IPAddress address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host.Trim('[', ']'), out var ip) ? ip
            : throw new ArgumentException($"--host {options.Host}: not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or one of this machine's addresses)");
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port}: not a TCP port");

        var store = await RolloutBrowsers.OpenReadOnlyAsync(options.Store, ct);
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
            builder.WebHost.ConfigureKestrel(k => k.Listen(address, options.Port));
            var app = builder.Build();
            var assets = LoadAssets();
            var pages = new UiPages(store);
            app.Use(async (ctx, next) =>
            {
                var h = ctx.Response.Headers;
                h.ContentSecurityPolicy = ContentSecurityPolicy;
                h.XContentTypeOptions = "nosniff";
                h["Referrer-Policy"] = "no-referrer";
                h.XFrameOptions = "DENY";
                // On loopback, a page on another site could reach us through a DNS name it points at 127.0.0.1: only our own names are served.
                if (loopback && !IsLoopback(ctx.Request.Host.Host))
                {
                    ctx.Response.StatusCode = StatusCodes.Status421MisdirectedRequest;
                    await ctx.Response.WriteAsync($"host '{ctx.Request.Host.Host}' is not served here: use 127.0.0.1 or localhost");
                    return;
                }
                if (options.Token is { Length: > 0 } token && !ctx.Request.Path.StartsWithSegments("/login") && !ctx.Request.Path.StartsWithSegments("/static") && !HasToken(ctx.Request, token))
                {
                    ctx.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    await UiPages.WriteHtml(ctx, UiPages.Login(failed: false));
                    return;
                }
                await next(ctx);
            });
            app.MapGet("/static/{name}", (string name) =>
                assets.TryGetValue(name, out var a) ? Results.Bytes(a.Bytes, a.ContentType) : Results.NotFound());
            app.MapGet("/login", () => Results.Content(UiPages.Login(failed: false).Value, "text/html; charset=utf-8"));
            app.MapPost("/login", async (HttpContext ctx) =>
            {
                var form = await ctx.Request.ReadFormAsync();
                if (options.Token is not { Length: > 0 } token) return Results.Redirect("/");
                if (!SameSecret(form["token"].ToString(), token))
                {
                    ctx.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    return Results.Content(UiPages.Login(failed: true).Value, "text/html; charset=utf-8", statusCode: 401);
                }
                ctx.Response.Cookies.Append(TokenCookie, token, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/" });
                return Results.Redirect("/");
            });
            pages.Map(app);
            await app.StartAsync(ct);
            return new UiServer(app, store, $"http://{(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString())}:{BoundPort(app, options.Port)}");
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    private static int BoundPort(WebApplication app, int asked)
    {
        if (asked != 0) return asked;
        var url = app.Urls.FirstOrDefault() ?? throw new InvalidOperationException("the server reports no address");
        return new Uri(url.Replace("[::]", "localhost")).Port;
    }

    private static bool HasToken(HttpRequest request, string token)
    {
        if (request.Headers.TryGetValue(TokenHeader, out var header) && SameSecret(header.ToString(), token)) return true;
        string auth = request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.Ordinal) && SameSecret(auth["Bearer ".Length..], token)) return true;
        return request.Cookies.TryGetValue(TokenCookie, out var cookie) && SameSecret(cookie, token);
    }

    // Constant time, so the comparison does not tell how much of a guess was right.
    private static bool SameSecret(string given, string token) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static Dictionary<string, (byte[] Bytes, string ContentType)> LoadAssets()
    {
        var asm = Assembly.GetExecutingAssembly();
        var assets = new Dictionary<string, (byte[], string)>(StringComparer.Ordinal);
        foreach (var resource in asm.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal)))
        {
            using var s = asm.GetManifestResourceStream(resource)!;
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            string name = resource["wwwroot/".Length..];
            string type = Path.GetExtension(name) switch
            {
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "text/plain; charset=utf-8",
            };
            assets[name] = (ms.ToArray(), type);
        }
        return assets;
    }

    /// <summary>Runs until <paramref name="ct"/> is cancelled.</summary>
    public Task WaitAsync(CancellationToken ct) => Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);

    /// <summary>Stops listening and closes the store.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _store.DisposeAsync();
    }
}
