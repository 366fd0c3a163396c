using System.Text;

namespace Nemotron.Gym.Conversation;

/// <summary>
/// Text files read strictly: .NET's readers turn bytes that are not UTF-8 into U+FFFD without a word, which would put
/// replacement characters into training data and stores. These helpers find such bytes and name the line.
/// </summary>
public static class StrictText
{
    /// <summary>UTF-8 without a byte-order mark that throws on invalid bytes instead of replacing them.</summary>
    public static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The 1-based number of the first line of <paramref name="path"/> holding bytes that are not UTF-8, or null when all are.</summary>
    public static int? FirstInvalidUtf8Line(string path)
    {
        using var stream = File.OpenRead(path);
        var buffer = new byte[1 << 20];
        var line = new List<byte>();
        int lineNo = 1, read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                // A newline byte never occurs inside a multi-byte UTF-8 sequence, so each line can be judged alone.
                if (!IsValid(line, buffer.AsSpan(start, i - start))) return lineNo;
                line.Clear();
                lineNo++;
                start = i + 1;
            }
            line.AddRange(buffer.AsSpan(start, read - start));
        }
        return IsValid(line, []) ? null : lineNo;
    }

    private static bool IsValid(List<byte> carried, ReadOnlySpan<byte> rest)
    {
        if (carried.Count == 0) return System.Text.Unicode.Utf8.IsValid(rest);
        var all = new byte[carried.Count + rest.Length];
        carried.CopyTo(all);
        rest.CopyTo(all.AsSpan(carried.Count));
        return System.Text.Unicode.Utf8.IsValid(all);
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the file and line when <paramref name="path"/> holds bytes that are not UTF-8.</summary>
    public static void RequireUtf8(string path)
    {
        if (FirstInvalidUtf8Line(path) is { } line)
            throw new InvalidDataException($"{path}:{line}: bytes that are not UTF-8; convert the file to UTF-8 or drop the line");
    }
}
