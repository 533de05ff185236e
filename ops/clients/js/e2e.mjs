#!/usr/bin/env node
// End-to-end check of Switchboard with an independent BigBlueButton client
// library: the npm package `bigbluebutton-js` (pinned in package.json).
//
// The library builds sha1-signed API URLs (`bbb.api(host, secret)`, with
// `administration.create/join/end` and `monitoring.getMeetings`) and fetches
// and parses them (`bbb.http(url)`). Its `host` is the BBB base URL *without*
// `api/` (e.g. `http://127.0.0.1:8090/bigbluebutton/`): it appends `/api/CALL`.
// An API base URL ending in `api/` is accepted too and trimmed here.
//
// Flow: create (unicode meetingID) -> moderator join (302 to a BBB server's
// /bigbluebutton/api/join, then that redirect is followed so the server
// registers the attendee) -> getMeetings lists it -> end -> getMeetings no
// longer lists it.
//
// Usage:
//   npm ci --prefix ops/clients/js
//   node ops/clients/js/e2e.mjs http://127.0.0.1:8090/bigbluebutton/ SECRET
// or set SWITCHBOARD_URL and SWITCHBOARD_SECRET. Exits non-zero on failure.

let bbb;
try {
  bbb = (await import('bigbluebutton-js')).default;
} catch (err) {
  console.error(
    'FAIL: cannot load bigbluebutton-js: run `npm ci --prefix ops/clients/js` first ' +
      `(${err.message})`,
  );
  process.exit(2);
}

const [argUrl, argSecret] = process.argv.slice(2);
const baseUrl = argUrl ?? process.env.SWITCHBOARD_URL;
const secret = argSecret ?? process.env.SWITCHBOARD_SECRET;
if (!baseUrl || !secret) {
  console.error('usage: node e2e.mjs <api base url> <secret>');
  console.error('   or: SWITCHBOARD_URL=... SWITCHBOARD_SECRET=... node e2e.mjs');
  process.exit(2);
}

// bigbluebutton-js wants the part before `api/`.
const host = baseUrl.replace(/\/+$/, '').replace(/\/api$/, '') + '/';

class Failure extends Error {}

function check(condition, message, detail) {
  if (!condition) {
    const extra = detail === undefined ? '' : `\n  got: ${JSON.stringify(detail)}`;
    throw new Failure(message + extra);
  }
}

function step(text) {
  console.log(`-- ${text}`);
}

function listed(response, meetingID) {
  const meetings = Array.isArray(response.meetings) ? response.meetings : [];
  return meetings.find((m) => String(m.meetingID) === meetingID);
}

async function main() {
  const api = bbb.api(host, secret);
  const suffix = Math.random().toString(36).slice(2, 8);
  const meetingID = `e2e-räum-${suffix}`;
  const name = 'E2E Räum ✓';
  // Explicit passwords: generated ones may look numeric to the XML parser.
  const moderatorPW = `mod-pw-${suffix}`;
  const attendeePW = `att-pw-${suffix}`;

  step(`create ${meetingID} on ${host}`);
  const createUrl = api.administration.create(name, meetingID, {
    moderatorPW,
    attendeePW,
    record: false,
  });
  const created = await bbb.http(createUrl);
  check(created.returncode === 'SUCCESS', 'create did not answer SUCCESS', created);
  check(
    String(created.meetingID) === meetingID,
    `create answered another meetingID than ${meetingID}`,
    created.meetingID,
  );
  check(
    String(created.moderatorPW) === moderatorPW,
    'create did not echo the moderatorPW sent',
    created.moderatorPW,
  );
  console.log(`   SUCCESS (internalMeetingID ${created.internalMeetingID})`);

  step('join as moderator (redirects not followed)');
  const joinUrl = api.administration.join('Ada Lövelace', meetingID, moderatorPW, {
    userID: `user-${suffix}`,
  });
  const joined = await fetch(joinUrl, { redirect: 'manual' });
  const joinBody = await joined.text();
  check(joined.status === 302, `join answered HTTP ${joined.status}, expected 302`, joinBody);
  const location = joined.headers.get('location');
  check(location, 'join 302 has no Location header');
  const target = new URL(location, joinUrl);
  check(
    target.pathname === '/bigbluebutton/api/join' && target.search.length > 1,
    "join Location is not a BBB server's /bigbluebutton/api/join?...",
    location,
  );
  check(
    target.origin !== new URL(host).origin,
    'join Location points back at Switchboard, not at a BBB server',
    location,
  );
  check(
    target.searchParams.get('meetingID') === meetingID,
    `join Location does not carry meetingID ${meetingID}`,
    location,
  );
  console.log(`   302 -> ${target.origin}${target.pathname}`);

  step("follow the Location (the BBB server's join)");
  const serverJoin = await fetch(target, { redirect: 'manual' });
  const serverJoinBody = await serverJoin.text();
  check(
    serverJoin.status === 302 && serverJoin.headers.get('location'),
    `the BBB server's join answered HTTP ${serverJoin.status}, expected 302 to its client`,
    serverJoinBody,
  );
  console.log(`   302 -> ${serverJoin.headers.get('location')}`);

  step('getMeetings lists the meeting (live figures come with the next poll)');
  let during;
  let meeting;
  const deadline = Date.now() + 5000;
  for (;;) {
    during = await bbb.http(api.monitoring.getMeetings());
    check(during.returncode === 'SUCCESS', 'getMeetings did not answer SUCCESS', during);
    meeting = listed(during, meetingID);
    check(meeting, `getMeetings does not list ${meetingID}`, during.meetings);
    if (Number(meeting.participantCount) === 1 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  check(meeting.meetingName === name, 'getMeetings shows another meetingName', meeting.meetingName);
  check(
    Number(meeting.participantCount) === 1,
    'getMeetings does not show the one participant who joined (within 5 s of polls)',
    meeting.participantCount,
  );
  console.log(`   listed, participantCount ${meeting.participantCount}`);

  step('end the meeting');
  const ended = await bbb.http(api.administration.end(meetingID, moderatorPW));
  check(ended.returncode === 'SUCCESS', 'end did not answer SUCCESS', ended);
  console.log(`   SUCCESS (${ended.messageKey})`);

  step('getMeetings no longer lists it');
  const after = await bbb.http(api.monitoring.getMeetings());
  check(after.returncode === 'SUCCESS', 'getMeetings did not answer SUCCESS', after);
  check(!listed(after, meetingID), `getMeetings still lists ${meetingID} after end`, after.meetings);
  console.log(`   gone${after.messageKey ? ` (${after.messageKey})` : ''}`);

  console.log('OK: create -> join -> getMeetings -> end through Switchboard with bigbluebutton-js');
}

try {
  await main();
} catch (err) {
  if (err instanceof Failure) {
    console.error(`FAIL: ${err.message}`);
  } else if (err?.isAxiosError) {
    const status = err.response ? `HTTP ${err.response.status}` : err.code;
    console.error(`FAIL: request ${err.config?.url} failed (${status}): ${err.message}`);
    if (err.response?.data) console.error(String(err.response.data));
  } else {
    console.error('FAIL: unexpected error:', err);
  }
  process.exit(1);
}
