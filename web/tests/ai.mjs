// The workspace's model in the browser: an agent's answer shown as the
// model writes it and then as posted, and a channel's summary, the
// reader's alone until she posts it. The harness runs llama.cpp's server
// (xllamacpp) with SmolLM2-135M; nothing here depends on its wording.
//
//   ENTENTE_DIRECT  alice's direct conversation with the agent
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step, until } from "./lib.mjs";

await scenario(async (browser) => {
  const alice = await signIn(browser, "alice", "alice-password-long");

  step("the agent's answer is shown while the model writes it");
  await openChannel(alice, process.env.ENTENTE_DIRECT);
  await alice.evaluate(() => {
    window.streamed = 0;
    new MutationObserver(() => {
      if (document.querySelector(".history article.post.streaming[aria-busy=true]")) window.streamed++;
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await say(alice, "Write a long story about a convoy crossing the desert at night.");
  await until("the answer to start", async () => (await alice.evaluate(() => window.streamed)) > 0, 60000);
  await shot(alice, "agent-streaming");
  await until(
    "the answer, posted",
    async () =>
      (await alice.locator(".history article.post").count()) === 2 &&
      (await alice.locator(".history article.post.streaming").count()) === 0,
    60000,
  );
  const answer = alice.locator(".history article.post").nth(1);
  assert.equal((await answer.locator(".author").textContent()).trim(), "Assistant");
  assert.ok((await answer.locator(".md").textContent()).trim().length > 0);
  await shot(alice, "agent-answer");

  step("a summary of ~ops, hers alone until she posts it");
  await openChannel(alice, "ops");
  await alice.getByRole("button", { name: /Summarise/ }).click();
  const summary = alice.locator(".panel .summary");
  await summary.locator(".md").waitFor({ timeout: 60000 });
  assert.match(await summary.locator(".note").textContent(), /only you see it/i);
  await shot(alice, "summary");
  const before = await alice.locator(".history article.post").count();
  await summary.getByRole("button", { name: "Post to the channel" }).click();
  await until("the summary in the channel", async () => (await alice.locator(".history article.post").count()) === before + 1);
  await alice.locator(".history article.post", { hasText: "Summary" }).waitFor();
});
