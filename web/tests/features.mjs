// The rest of what a person does in a channel: unread badges, infinite
// scroll back to the start, edit, pin, delete, search with filters,
// creating a channel, a direct message, browsing and joining.
import assert from "node:assert/strict";
import { openChannel, say, scenario, shot, signIn, step, until } from "./lib.mjs";

await scenario(async (browser) => {
  const alice = await signIn(browser, "alice", "alice-password-long");
  const alicePost = (text) => alice.locator(".history article.post", { hasText: text });

  step("the sidebar counts what alice has not read");
  const badge = alice.locator('nav.sidebar a[data-channel="ops"] .badge');
  await badge.waitFor();
  assert.equal(await badge.textContent(), "121");

  step("the channel opens at the newest post, below a new-messages line");
  await openChannel(alice, "ops");
  await alicePost("backlog message 120").waitFor();
  await alice.locator(".history .new-line").waitFor();
  await until("the badge to clear once read", async () => !(await badge.count()));

  step("scrolling up loads older posts until the start");
  await until(
    "the beginning of the channel",
    async () => {
      await alice.locator(".history").evaluate((el) => (el.scrollTop = 0));
      return (await alice.getByText("This is the beginning of ops.").count()) > 0;
    },
    20000,
  );
  await alicePost("backlog message 1").first().waitFor();
  assert.equal(await alice.locator(".history article.post").count(), 121);

  step("edit, pin and delete her own post");
  await say(alice, "Mustering at 1500 hrs, gate 4");
  const mine = alicePost("Mustering at 1500");
  await mine.waitFor();
  await mine.hover();
  await mine.getByRole("button", { name: "Edit" }).click();
  await mine.locator("textarea").fill("Mustering at 1530 hrs, gate 4");
  await mine.getByRole("button", { name: "Save" }).click();
  const edited = alicePost("Mustering at 1530");
  await edited.locator(".edited").waitFor();
  await edited.hover();
  await edited.getByRole("button", { name: "Pin" }).click();
  await edited.getByRole("button", { name: "Unpin" }).waitFor({ state: "attached" });
  await alice.getByRole("button", { name: /Pinned/ }).click();
  await alice.locator("aside.panel article.post", { hasText: "Mustering at 1530" }).waitFor();
  await alice.keyboard.press("Escape");
  alice.once("dialog", (d) => d.accept());
  await edited.hover();
  await edited.getByRole("button", { name: "Delete" }).click();
  await until("the deleted post to go", async () => !(await alicePost("Mustering at 1530").count()));

  step("search with in: and from:");
  await alice.getByLabel("Search messages").fill("in:random from:bob rendezvous");
  await alice.getByLabel("Search messages").press("Enter");
  const results = alice.locator("ul.results li");
  await results.first().waitFor();
  assert.equal(await results.count(), 1);
  assert.match(await results.first().textContent(), /rendezvous at the bridge/);
  await shot(alice, "search");

  step("create a channel");
  await alice.getByRole("link", { name: "New channel" }).click();
  await alice.getByLabel(/^Name/).fill("logistics");
  await alice.getByLabel("Purpose").fill("Fuel, water, spares");
  await alice.getByRole("button", { name: "Create" }).click();
  await alice.locator("#channel-title", { hasText: "logistics" }).waitFor();
  await alice.locator('nav.sidebar a[data-channel="logistics"]').waitFor();

  step("start a direct message");
  await alice.getByRole("link", { name: "New message" }).click();
  await alice.getByLabel("Find people").fill("bob");
  await alice.getByRole("button", { name: "Message Bob" }).click();
  await alice.locator("#channel-title", { hasText: "Bob" }).waitFor();
  await say(alice, "Private word, bob");
  await alicePost("Private word, bob").waitFor();
  const bob = await signIn(browser, "bob", "bob-password-long");
  await bob.locator("nav.sidebar section", { hasText: "Direct messages" }).locator("a", { hasText: "Alice" }).click();
  await bob.locator(".history article.post", { hasText: "Private word, bob" }).waitFor();

  step("bob's account is deactivated: his open page returns to the sign-in page");
  const admin = await fetch(`${process.env.ENTENTE_URL}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: process.env.ENTENTE_ADMIN_PASSWORD }),
  }).then((r) => r.json());
  const auth = { authorization: `Bearer ${admin.token}` };
  const found = await fetch(`${process.env.ENTENTE_URL}/api/v1/users?q=bob`, { headers: auth }).then((r) => r.json());
  const deactivated = await fetch(`${process.env.ENTENTE_URL}/api/v1/users/${found.users[0].id}/deactivate`, {
    method: "POST",
    headers: auth,
  });
  assert.ok(deactivated.ok, `deactivate: ${deactivated.status}`);
  await bob.getByRole("button", { name: "Sign in" }).waitFor({ timeout: 20000 });

  step("browse and join a public channel");
  await alice.getByRole("link", { name: "Browse channels" }).click();
  await alice.getByRole("button", { name: "Join announcements" }).click();
  await alice.locator("#channel-title", { hasText: "announcements" }).waitFor();
  await shot(alice, "joined");
});
