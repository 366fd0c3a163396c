using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests.Training;

/// <summary>Pretraining text from .txt and .jsonl files, chat JSONL included.</summary>
public sealed class TextCorpusTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("ngym-corpus-").FullName;

    private string Write(string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void Chat_lines_become_documents_of_their_turns()
    {
        var tokenizer = new ByteTokenizer();
        var chat = Write("chat.jsonl", """
            {"messages": [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "cd"}]}
            {"text": "plain"}
            """);
        var corpus = TextCorpus.Load([chat], tokenizer);
        Assert.Equal(2, corpus.Documents);
        // "ab\n\ncd" + end of text, "plain" + end of text.
        Assert.Equal(6 + 1 + 5 + 1, corpus.Tokens);
    }

    [Fact]
    public void A_line_that_is_neither_text_nor_chat_names_its_line()
    {
        var bad = Write("bad.jsonl", "{\"text\": \"ok\"}\n{\"messages\": [{\"role\": \"user\", \"content\": 5}]}\n");
        var e = Assert.Throws<InvalidDataException>(() => TextCorpus.Load([bad], new ByteTokenizer()));
        Assert.Contains("bad.jsonl:2", e.Message);
        Assert.Contains("messages[0].content", e.Message);
        var other = Write("other.jsonl", "{\"prompt\": \"x\"}\n");
        Assert.Contains("other.jsonl:1", Assert.Throws<InvalidDataException>(() => TextCorpus.Load([other], new ByteTokenizer())).Message);
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);
}
