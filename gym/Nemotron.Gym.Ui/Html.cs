using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace Nemotron.Gym.Ui;

/// <summary>
/// HTML text that is already safe to send: markup we wrote, or text that went through the encoder. Pages are built
/// only from these, so a string from the store can reach the page only through <see cref="HtmlText"/>'s escaping.
/// </summary>
public readonly struct Html(string value)
{
    /// <summary>The markup.</summary>
    public string Value { get; } = value ?? "";
    /// <summary>Nothing.</summary>
    public static Html Empty { get; } = new("");
    /// <summary>Joins fragments.</summary>
    public static Html Join(IEnumerable<Html> parts) => new(string.Concat(parts.Select(p => p.Value)));
    /// <inheritdoc/>
    public override string ToString() => Value;
}

/// <summary>
/// Builds <see cref="Html"/> from an interpolated string: the literal parts are markup, every interpolated string is
/// HTML-encoded (quotes included, so it is safe inside attribute values too), numbers are written in the invariant
/// culture, and only <see cref="Html"/> values go in as they are.
/// </summary>
[InterpolatedStringHandler]
public ref struct HtmlText
{
    private readonly StringBuilder _sb;

    /// <summary>Starts a builder (called by the compiler).</summary>
    public HtmlText(int literalLength, int formattedCount) => _sb = new StringBuilder(literalLength + formattedCount * 16);

    /// <summary>Markup written in the source.</summary>
    public void AppendLiteral(string s) => _sb.Append(s);
    /// <summary>Text: encoded.</summary>
    public void AppendFormatted(string? s) => _sb.Append(HtmlEncoder.Default.Encode(s ?? ""));
    /// <summary>Markup already safe.</summary>
    public void AppendFormatted(Html h) => _sb.Append(h.Value);
    /// <summary>A number or other value: formatted invariantly, then encoded.</summary>
    public void AppendFormatted<T>(T value, string? format = null) where T : IFormattable =>
        _sb.Append(HtmlEncoder.Default.Encode(value.ToString(format, CultureInfo.InvariantCulture)));

    /// <summary>The result.</summary>
    public Html ToHtml() => new(_sb.ToString());
}

/// <summary>Helpers that build <see cref="Html"/>.</summary>
public static class H
{
    /// <summary>Markup from an interpolated string whose holes are escaped.</summary>
    public static Html T(ref HtmlText text) => text.ToHtml();

    /// <summary>A query string from fixed names and untrusted values (each value percent-encoded; the result still needs HTML-encoding, which the handler does).</summary>
    public static string Query(params (string Name, object? Value)[] args) =>
        string.Join("&", args.Where(a => a.Value is not null and not "").Select(a =>
            a.Name + "=" + Uri.EscapeDataString(a.Value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : a.Value!.ToString()!)));

    /// <summary>A number for people: a few significant digits, or a dash for none.</summary>
    public static string Num(double? v) => v is not { } x ? "–" : double.IsFinite(x) ? x.ToString("0.####", CultureInfo.InvariantCulture) : x.ToString(CultureInfo.InvariantCulture);
}
