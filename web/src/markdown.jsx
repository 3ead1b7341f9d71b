// Markdown to Preact elements. No HTML string is ever made or parsed: text
// becomes text nodes, so a message cannot inject markup or script whatever
// it contains. Links keep only http(s) and mailto targets.
//
// Blocks: paragraphs, ``` fenced code, > quotes, - and 1. lists, # headings.
// Inline: `code`, **bold**, *italic* / _italic_, ~~strike~~, [text](url),
// bare URLs, @mentions, ~channel links, :emoji: short codes.

export const EMOJI = {
  "+1": "👍",
  thumbsup: "👍",
  "-1": "👎",
  heart: "❤️",
  smile: "😄",
  laughing: "😆",
  tada: "🎉",
  eyes: "👀",
  rocket: "🚀",
  white_check_mark: "✅",
  warning: "⚠️",
  fire: "🔥",
  thinking: "🤔",
  pray: "🙏",
  clap: "👏",
  wave: "👋",
  ok_hand: "👌",
  x: "❌",
};

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

export function safeUrl(url) {
  const trimmed = url.trim();
  return SAFE_URL.test(trimmed) ? trimmed : null;
}

// Earliest match wins; on a tie, the first pattern listed.
const INLINE = [
  ["code", /`([^`\n]+)`/],
  // A target may hold one level of parentheses (Wikipedia's do).
  ["link", /\[([^\]\n]+)\]\(((?:[^()\s]|\([^()\s]*\))+)\)/],
  ["url", /\b(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/],
  ["bold", /\*\*([^*\n]+?)\*\*/],
  ["strike", /~~([^~\n]+?)~~/],
  ["italic", /(?:^|(?<=[\s(]))[*_]([^*_\n]+?)[*_](?=$|[\s).,;:!?])/],
  ["mention", /(?:^|(?<=[\s(]))@([a-z0-9][a-z0-9._-]*[a-z0-9]|[a-z0-9])/i],
  ["channel", /(?:^|(?<=[\s(]))~([a-z0-9][a-z0-9_-]*)/],
  ["emoji", /:([a-z0-9_+-]+):/],
];

function inline(text, ctx, key = "i") {
  const out = [];
  let rest = text;
  let n = 0;
  while (rest) {
    let best = null;
    for (const [kind, re] of INLINE) {
      const m = re.exec(rest);
      if (m && (best === null || m.index < best.m.index)) best = { kind, m };
    }
    if (!best) {
      out.push(rest);
      break;
    }
    const { kind, m } = best;
    if (m.index > 0) out.push(rest.slice(0, m.index));
    const k = `${key}.${n++}`;
    out.push(render(kind, m, ctx, k) ?? m[0]);
    rest = rest.slice(m.index + m[0].length);
  }
  return out;
}

function render(kind, m, ctx, key) {
  switch (kind) {
    case "code":
      return <code key={key}>{m[1]}</code>;
    case "bold":
      return <strong key={key}>{inline(m[1], ctx, key)}</strong>;
    case "italic":
      return <em key={key}>{inline(m[1], ctx, key)}</em>;
    case "strike":
      return <del key={key}>{inline(m[1], ctx, key)}</del>;
    case "link": {
      const href = safeUrl(m[2]);
      if (!href) return <span key={key}>{inline(m[1], ctx, key)}</span>;
      return (
        <a key={key} href={href} target="_blank" rel="noopener noreferrer nofollow">
          {inline(m[1], ctx, key)}
        </a>
      );
    }
    case "url":
      return (
        <a key={key} href={m[1]} target="_blank" rel="noopener noreferrer nofollow">
          {m[1]}
        </a>
      );
    case "mention": {
      const name = m[1].toLowerCase();
      const me = ctx.me && ctx.me.toLowerCase() === name;
      return (
        <span key={key} class={me ? "mention mention-me" : "mention"}>
          @{m[1]}
        </span>
      );
    }
    case "channel": {
      const channel = ctx.channelByName?.(m[1]);
      if (!channel) return null;
      return (
        <a key={key} class="channel-link" href={`#/c/${channel.id}`}>
          ~{m[1]}
        </a>
      );
    }
    case "emoji":
      return EMOJI[m[1]] ? (
        <span key={key} role="img" aria-label={m[1]}>
          {EMOJI[m[1]]}
        </span>
      ) : null;
  }
  return null;
}

/** Splits a message into blocks. */
export function blocks(text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^```\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      const code = [];
      i++;
      while (i < lines.length && !/^```\s*$/.test(lines[i])) code.push(lines[i++]);
      i++; // the closing fence, or the end
      out.push({ type: "code", lang: fence[1], text: code.join("\n") });
      continue;
    }
    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      out.push({ type: "heading", level: heading[1].length, text: heading[2] });
      i++;
      continue;
    }
    if (/^>\s?/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quoted.push(lines[i++].replace(/^>\s?/, ""));
      out.push({ type: "quote", children: blocks(quoted.join("\n")) });
      continue;
    }
    const bullet = /^\s*[-*+]\s+/;
    const numbered = /^\s*\d{1,9}[.)]\s+/;
    if (bullet.test(line) || numbered.test(line)) {
      const marker = bullet.test(line) ? bullet : numbered;
      const items = [];
      while (i < lines.length && marker.test(lines[i])) items.push(lines[i++].replace(marker, ""));
      out.push({ type: marker === bullet ? "ul" : "ol", items });
      continue;
    }
    const para = [];
    while (
      i < lines.length &&
      !/^\s*$/.test(lines[i]) &&
      !/^```/.test(lines[i]) &&
      !/^>\s?/.test(lines[i]) &&
      !/^#{1,6}\s/.test(lines[i])
    )
      para.push(lines[i++]);
    out.push({ type: "p", lines: para });
  }
  return out;
}

function renderBlocks(list, ctx, key) {
  return list.map((b, n) => {
    const k = `${key}.${n}`;
    switch (b.type) {
      case "code":
        return (
          <pre key={k}>
            <code data-lang={b.lang || undefined}>{b.text}</code>
          </pre>
        );
      case "heading": {
        const Tag = `h${Math.min(6, b.level + 2)}`;
        return <Tag key={k}>{inline(b.text, ctx, k)}</Tag>;
      }
      case "quote":
        return <blockquote key={k}>{renderBlocks(b.children, ctx, k)}</blockquote>;
      case "ul":
      case "ol": {
        const Tag = b.type;
        return (
          <Tag key={k}>
            {b.items.map((item, j) => (
              <li key={j}>{inline(item, ctx, `${k}.${j}`)}</li>
            ))}
          </Tag>
        );
      }
      default:
        return (
          <p key={k}>
            {b.lines.flatMap((line, j) =>
              j === 0 ? inline(line, ctx, `${k}.${j}`) : [<br key={`br${j}`} />, ...inline(line, ctx, `${k}.${j}`)],
            )}
          </p>
        );
    }
  });
}

/** A message rendered: `ctx.me` is the reader's username (their mentions
 * stand out), `ctx.channelByName` resolves ~channel links. */
export function Markdown({ text, ctx = {} }) {
  return <div class="md">{renderBlocks(blocks(text), ctx, "b")}</div>;
}
