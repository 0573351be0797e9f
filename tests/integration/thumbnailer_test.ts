import { deepEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import {
  isValidRoomId,
  keyframeToJpeg,
  resizeJpeg,
  Thumbnailer,
  ThumbnailError,
  type ThumbnailInfo,
} from "../../src/thumbs/thumbnailer.ts";
import { H264Depacketizer } from "../../src/rtp/h264_depacketizer.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  encodeTestStream,
  groupAccessUnits,
  packetizeStream,
  splitAnnexB,
} from "../fixtures/h264_fixture.ts";

// The keyframes go through the depacketizer, as they would in the server. Unit 5's SPS/PPS are stripped
// so its keyframe only decodes thanks to the parameter sets the depacketizer remembered from unit 0.
const units = groupAccessUnits(splitAnnexB(await encodeTestStream()));
units[5] = units[5].filter((nal) => (nal[0] & 0x1f) === 5);
const keyframes: Uint8Array[] = [];
const depacketizer = new H264Depacketizer();
for (const p of packetizeStream(units, 1200, 65000)) {
  const au = depacketizer.push(p.payload, p.seq, p.timestamp, p.marker);
  if (au?.isKeyframe) keyframes.push(au.data.slice());
}
const [firstKeyframe, secondKeyframe] = keyframes;
const garbage = Uint8Array.from({ length: 4000 }, (_, i) => (i * 7919) & 0xff);

async function checkJpeg(jpeg: Uint8Array, width: number, height: number): Promise<void> {
  deepEqual([jpeg[0], jpeg[1]], [0xff, 0xd8], "SOI");
  deepEqual([jpeg.at(-2), jpeg.at(-1)], [0xff, 0xd9], "EOI");
  const meta = await sharp(jpeg).metadata();
  equal(meta.format, "jpeg");
  equal(meta.width, width);
  equal(meta.height, height);
}

function tempDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "thumbs_test_" });
}

/** An executable that counts its runs in a file, then behaves as ffmpeg (or runs `body` instead). */
/** Whether process `pid` exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** The pid a fake ffmpeg wrote to `dir`/ffmpeg.pid once it started (it then execs into its real work). */
function ffmpegPid(dir: string): Promise<number> {
  return waitFor(
    "the fake ffmpeg to start",
    () => {
      try {
        return Number(Deno.readTextFileSync(join(dir, "ffmpeg.pid")));
      } catch {
        return 0;
      }
    },
    (pid) => pid > 0 && running(pid),
    10_000,
    10,
  );
}

async function countingFfmpeg(
  dir: string,
  body = 'exec ffmpeg "$@"',
): Promise<{ path: string; runs: () => number }> {
  const path = join(dir, "ffmpeg_wrapper.sh");
  const count = join(dir, "runs.txt");
  await Deno.writeTextFile(path, `#!/bin/sh\necho x >> '${count}'\n${body}\n`);
  await Deno.chmod(path, 0o755);
  const runs = () => {
    try {
      return Deno.readTextFileSync(count).split("\n").filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return { path, runs };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("fixture: two keyframes came out of the depacketizer", () => {
  equal(keyframes.length, 2);
  equal(secondKeyframe[4] & 0x1f, 7, "SPS prepended to the stripped keyframe");
});

Deno.test("keyframeToJpeg: decodes a depacketized keyframe into a 16:9 JPEG", async () => {
  const input = firstKeyframe.slice();
  const started = performance.now();
  const small = await keyframeToJpeg(input, { width: 160 });
  const ms = performance.now() - started;
  console.log(`    keyframeToJpeg 320x180 -> 160x90: ${ms.toFixed(1)} ms, ${small.jpeg.length} bytes`);
  await checkJpeg(small.jpeg, 160, 90);
  deepEqual([small.width, small.height], [160, 90]);
  deepEqual(input, firstKeyframe, "input left intact (not detached or changed)");

  const full = await keyframeToJpeg(firstKeyframe, { width: 640 }); // never enlarged
  await checkJpeg(full.jpeg, 320, 180);

  // The pixels, not just the size, match the source picture (allowing for 4:2:0 and JPEG losses).
  const ref = await new Deno.Command("ffmpeg", {
    args:
      "-hide_banner -loglevel error -f lavfi -i testsrc=size=320x180:rate=10 -frames:v 1 -f image2pipe -c:v png pipe:1"
        .split(" "),
    stdout: "piped",
  }).output();
  const want = await sharp(ref.stdout).removeAlpha().raw().toBuffer();
  const got = await sharp(full.jpeg).raw().toBuffer();
  equal(got.length, want.length);
  const meanDiff = got.reduce((sum, v, i) => sum + Math.abs(v - want[i]), 0) / got.length;
  ok(meanDiff < 12, `mean difference ${meanDiff}`);
});

Deno.test("keyframeToJpeg: a keyframe relying on remembered SPS/PPS decodes", async () => {
  const out = await keyframeToJpeg(secondKeyframe, { width: 320 });
  await checkJpeg(out.jpeg, 320, 180);
});

Deno.test("keyframeToJpeg: garbage gives a one-line ThumbnailError, without waiting for the timeout", async () => {
  // "decode_failed" rather than "timeout": ffmpeg's refusal was seen, not the 5 s timer.
  await rejects(keyframeToJpeg(garbage, { width: 320, timeoutMs: 5000 }), (err) => {
    ok(err instanceof ThumbnailError);
    equal(err.code, "decode_failed");
    ok(!err.message.includes("\n"), err.message);
    return true;
  });
  await rejects(keyframeToJpeg(new Uint8Array(), { width: 320 }), ThumbnailError);
  await rejects(keyframeToJpeg(firstKeyframe, { width: 0 }), ThumbnailError);
  await rejects(keyframeToJpeg(firstKeyframe, { width: 1.5 }), ThumbnailError);
});

Deno.test("keyframeToJpeg: a missing ffmpeg binary says ffmpeg not found", async () => {
  await rejects(keyframeToJpeg(firstKeyframe, { width: 320, ffmpegPath: "/nonexistent/ffmpeg" }), (err) => {
    ok(err instanceof ThumbnailError);
    equal(err.code, "ffmpeg_unavailable");
    match(err.message, /ffmpeg not found/);
    return true;
  });
});

Deno.test("keyframeToJpeg: a hung ffmpeg is killed at the timeout, even if a child keeps the pipes", async () => {
  const dir = await tempDir();
  try {
    // The background `sleep` outlives the killed shell and keeps its stdout/stderr open.
    const fake = await countingFfmpeg(dir, `sleep 30 & echo $! > '${join(dir, "sleep.pid")}'; wait`);
    await rejects(
      keyframeToJpeg(firstKeyframe, { width: 320, ffmpegPath: fake.path, timeoutMs: 300 }),
      (err) => {
        ok(err instanceof ThumbnailError);
        equal(err.code, "timeout");
        equal(err.message, "ffmpeg timed out after 300 ms");
        return true;
      },
    );
    // Settled while the pipe-holding child still runs: it did not wait for the pipes to close.
    ok(running(Number(await Deno.readTextFile(join(dir, "sleep.pid")))), "the background sleep still runs");
  } finally {
    try {
      Deno.kill(Number(await Deno.readTextFile(join(dir, "sleep.pid"))), "SIGKILL");
    } catch {
      // never started or already gone
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyframeToJpeg: an abort signal kills ffmpeg", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir, `echo $$ > '${join(dir, "ffmpeg.pid")}'; exec sleep 31`);
    const controller = new AbortController();
    const converting = keyframeToJpeg(firstKeyframe, {
      width: 320,
      ffmpegPath: fake.path,
      signal: controller.signal,
    });
    const pid = await ffmpegPid(dir);
    controller.abort();
    await rejects(converting, (err) => err instanceof ThumbnailError && err.code === "aborted");
    ok(!running(pid), "ffmpeg was killed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resizeJpeg: shrinks, keeps the aspect, never enlarges, rejects non-JPEG", async () => {
  const { jpeg } = await keyframeToJpeg(firstKeyframe, { width: 640 });
  const small = await resizeJpeg(jpeg, 100);
  await checkJpeg(small, 100, 56);
  equal(await resizeJpeg(jpeg, 640), jpeg);
  await rejects(resizeJpeg(garbage, 100), ThumbnailError);
  await rejects(resizeJpeg(jpeg, -1), ThumbnailError);
});

Deno.test("isValidRoomId", () => {
  for (const id of ["a", "Room_1-x", "x".repeat(64)]) ok(isValidRoomId(id), id);
  for (const id of ["", "x".repeat(65), "../etc", "a/b", "a.b", "a b", "é"]) ok(!isValidRoomId(id), id);
});

Deno.test("Thumbnailer: first keyframe at once, then at most one per interval", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir);
    const storageDir = join(dir, "storage", "nested"); // created on first write
    const seen: [string, ThumbnailInfo][] = [];
    const logs: string[] = [];
    const thumbs = new Thumbnailer({
      storageDir,
      intervalMs: 10_000,
      ffmpegPath: fake.path,
      onThumbnail: (room, info) => seen.push([room, info]),
      log: (m) => logs.push(m),
    });
    const caller = firstKeyframe.slice();
    thumbs.offerKeyframe("lobby", caller, 0);
    caller.fill(0); // the thumbnailer must have taken its own copy
    thumbs.offerKeyframe("lobby", firstKeyframe, 1); // one ffmpeg per room: declined
    await thumbs.idle();
    equal(fake.runs(), 1);
    equal(seen.length, 1);
    const [room, info] = seen[0];
    equal(room, "lobby");
    equal(info.path, join(storageDir, "lobby.jpg"));
    equal(thumbs.path("lobby"), info.path);
    deepEqual([info.width, info.height], [320, 180]);
    match(info.etag, /^"[0-9a-z]+-[0-9a-z]+"$/);
    deepEqual(thumbs.info("lobby"), info);
    await checkJpeg(await Deno.readFile(info.path), 320, 180);
    deepEqual([...Deno.readDirSync(storageDir)].map((e) => e.name), ["lobby.jpg"], "no temp files left");

    // Up to 250 ms early counts as due (the room's keyframe request reads its clock a moment earlier).
    thumbs.offerKeyframe("lobby", firstKeyframe, 9_700);
    await thumbs.idle();
    equal(fake.runs(), 1, "declined inside the interval");
    thumbs.offerKeyframe("lobby", secondKeyframe, 10_000);
    thumbs.offerKeyframe("hall", secondKeyframe, 10_000);
    await thumbs.idle();
    equal(fake.runs(), 3);
    deepEqual(seen.map(([r]) => r).sort(), ["hall", "lobby", "lobby"]);
    ok(thumbs.info("lobby")!.updatedAt >= info.updatedAt);
    deepEqual(logs, []);
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: maxConcurrent caps ffmpeg processes; declined rooms try again next keyframe", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir);
    const done: string[] = [];
    const thumbs = new Thumbnailer({
      storageDir: dir,
      intervalMs: 10_000,
      maxConcurrent: 1,
      ffmpegPath: fake.path,
      onThumbnail: (room) => done.push(room),
    });
    for (const room of ["a", "b", "c"]) thumbs.offerKeyframe(room, firstKeyframe, 0);
    await thumbs.idle();
    deepEqual(done, ["a"]);
    thumbs.offerKeyframe("b", firstKeyframe, 100); // was declined, not rate-limited
    await thumbs.idle();
    deepEqual(done, ["a", "b"]);
    equal(fake.runs(), 2);
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: a failure logs one warning and backs off; success is logged as recovery", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir);
    const logs: string[] = [];
    const thumbs = new Thumbnailer({
      storageDir: dir,
      intervalMs: 10_000,
      ffmpegPath: fake.path,
      log: (m) => logs.push(m),
    });
    thumbs.offerKeyframe("r1", garbage, 0);
    await thumbs.idle();
    equal(fake.runs(), 1);
    equal(logs.length, 1);
    match(logs[0], /room r1 failed: ffmpeg exited with code \d+/);
    ok(!logs[0].includes("\n"));
    thumbs.offerKeyframe("r1", firstKeyframe, 9_000);
    await thumbs.idle();
    equal(fake.runs(), 1, "no retry inside the interval");
    thumbs.offerKeyframe("r1", garbage, 10_000);
    await thumbs.idle();
    equal(fake.runs(), 2);
    equal(logs.length, 1, "repeated failure not logged again");
    thumbs.offerKeyframe("r1", firstKeyframe, 20_000);
    await thumbs.idle();
    equal(fake.runs(), 2, "second failure doubled the wait");
    thumbs.offerKeyframe("r1", firstKeyframe, 30_000);
    await thumbs.idle();
    equal(fake.runs(), 3);
    equal(logs.length, 2);
    match(logs[1], /recovered/);
    ok(await exists(join(dir, "r1.jpg")));
    equal(thumbs.info("r1")?.width, 320);
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: missing ffmpeg warns once and disables thumbnails", async () => {
  const dir = await tempDir();
  try {
    const logs: string[] = [];
    const thumbs = new Thumbnailer({
      storageDir: dir,
      ffmpegPath: "/nonexistent/ffmpeg",
      log: (m) => logs.push(m),
    });
    thumbs.offerKeyframe("a", firstKeyframe, 0);
    thumbs.offerKeyframe("b", firstKeyframe, 0);
    await thumbs.idle();
    thumbs.offerKeyframe("c", firstKeyframe, 100_000);
    await thumbs.idle();
    equal(logs.length, 1);
    match(logs[0], /^thumbnails disabled: ffmpeg not found/);
    equal(thumbs.info("a"), undefined);
    deepEqual([...Deno.readDirSync(dir)], []);
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: invalid room ids never reach the file system", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir);
    const logs: string[] = [];
    const storageDir = join(dir, "s");
    const thumbs = new Thumbnailer({ storageDir, ffmpegPath: fake.path, log: (m) => logs.push(m) });
    for (const id of ["../escape", "a/b", "", "x".repeat(65)]) {
      thumbs.offerKeyframe(id, firstKeyframe, 0);
      throws(() => thumbs.path(id), ThumbnailError);
      await thumbs.remove(id);
    }
    await thumbs.idle();
    equal(fake.runs(), 0);
    equal(logs.length, 1);
    equal(await exists(storageDir), false);
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: remove deletes the file, also when it races a running ffmpeg", async () => {
  const dir = await tempDir();
  try {
    const thumbs = new Thumbnailer({ storageDir: dir });
    thumbs.offerKeyframe("gone", firstKeyframe, 0);
    await thumbs.idle();
    ok(await exists(join(dir, "gone.jpg")));
    await thumbs.remove("gone");
    equal(await exists(join(dir, "gone.jpg")), false);
    equal(thumbs.info("gone"), undefined);

    thumbs.offerKeyframe("racy", firstKeyframe, 0);
    await thumbs.remove("racy"); // while ffmpeg runs
    await thumbs.idle();
    deepEqual([...Deno.readDirSync(dir)], []);
    equal(thumbs.info("racy"), undefined);

    thumbs.offerKeyframe("racy", firstKeyframe, 1); // state was forgotten: immediate again
    await thumbs.idle();
    ok(await exists(join(dir, "racy.jpg")));
    await thumbs.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer: close kills a running ffmpeg and ignores later keyframes", async () => {
  const dir = await tempDir();
  try {
    const fake = await countingFfmpeg(dir, `echo $$ > '${join(dir, "ffmpeg.pid")}'; exec sleep 32`);
    const logs: string[] = [];
    const thumbs = new Thumbnailer({ storageDir: dir, ffmpegPath: fake.path, log: (m) => logs.push(m) });
    thumbs.offerKeyframe("a", firstKeyframe, 0);
    const pid = await ffmpegPid(dir);
    await thumbs.close();
    ok(!running(pid), "close killed ffmpeg");
    thumbs.offerKeyframe("b", firstKeyframe, 0);
    await thumbs.idle();
    equal(fake.runs(), 1);
    deepEqual(logs, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Thumbnailer.cleanStale removes old thumbnails and temp files only", async () => {
  const dir = await tempDir();
  try {
    for (const name of ["room1.jpg", ".room1.0123abcd.tmp", "notes.txt", "photo.jpeg", "bad name.jpg"]) {
      await Deno.writeFile(join(dir, name), new Uint8Array([1]));
    }
    await Deno.mkdir(join(dir, "sub.jpg"));
    equal(await Thumbnailer.cleanStale(dir), 2);
    deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "bad name.jpg",
      "notes.txt",
      "photo.jpeg",
      "sub.jpg",
    ]);
    equal(await Thumbnailer.cleanStale(join(dir, "missing")), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
