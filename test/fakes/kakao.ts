// A fake NHN Cloud KakaoTalk Bizmessage AlimTalk API (v2.3) on 127.0.0.1, validating requests the
// way NHN documents them and answering with NHN's result bodies and codes.
//   POST /alimtalk/v2.3/appkeys/{appkey}/messages            send (template + templateParameter)
//   GET  /alimtalk/v2.3/appkeys/{appkey}/messages/{requestId}/{recipientSeq}   one message's result
// Checks, in NHN's order: API path (-9998), appkey (-1000), X-Secret-Key (-1001), JSON content type
// (-9996), body (-3002), senderKey (-2001 blank, -2017 unknown), templateCode (-2001, -2000 over 20,
// -3003 unknown, -3005 not approved), recipientList (-2001, -2005 over 1000), recipientNo (-2001,
// -2000 over 15), resendParameter (-2502 resend not set up, -1003 unregistered send number); then
// per recipient: number format (-4019), template variables (-3049 missing, -3048 value over 1300,
// -2019 filled content over 1300). When every recipient failed the header is -1031.
// Accepted messages get Kakao's later result (1000 delivered; 3019/3020 for scripted numbers), and a
// failed one that asked for a resend is resent as SMS (recorded in `resends`, resendStatus RSC04).
// Scripts per recipient number: not_kakao_user, blocked (accepted, fail later), result (a
// sendResults code), server_error (HTTP 5xx, gateway body), system_error (-9999), throttled (429),
// hang (never answers), raw (any answer).

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface FakeTemplate {
  /** Template body with #{variable} placeholders. */
  content: string;
  /** NHN template status: TSC01 requested, TSC02 under review, TSC03 approved, TSC04 rejected. */
  status?: 'TSC01' | 'TSC02' | 'TSC03' | 'TSC04';
}

export type FakeOutcome =
  | { kind: 'not_kakao_user' }
  | { kind: 'blocked' }
  | { kind: 'result'; code: number; message: string }
  | { kind: 'server_error'; status?: number; retryAfter?: string }
  | { kind: 'system_error' }
  | { kind: 'throttled'; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'raw'; status: number; body: string; headers?: Record<string, string> };

export interface FakeRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

export interface FakeMessage {
  requestId: string;
  recipientSeq: number;
  recipientNo: string;
  templateCode: string;
  content: string;
  recipientGroupingKey: string | null;
  messageStatus: 'COMPLETED' | 'FAILED';
  resultCode: string;
  resultCodeName: string;
  resendStatus: 'RSC01' | 'RSC02' | 'RSC03' | 'RSC04' | 'RSC05';
  resendStatusName: string;
  resendRequestId: string | null;
}

export interface FakeResend {
  recipientNo: string;
  sendNo: string;
  type: 'SMS' | 'LMS';
  title: string | null;
  content: string;
}

export interface FakeKakaoOptions {
  appKey: string;
  secretKey: string;
  senderKey: string;
  templates: Record<string, FakeTemplate>;
  /** Sender numbers registered in NHN SMS (resendSendNo must be one of them). */
  smsSendNos?: string[];
  /** Whether SMS resend is set up for the sender profile (else isResend: true is -2502). */
  resendEnabled?: boolean;
}

const RESEND_NAMES = { RSC01: 'Not a resend target', RSC02: 'Resend target', RSC03: 'Resending', RSC04: 'Resend succeeded', RSC05: 'Resend failed' } as const;
const KAKAO_RESULTS: Record<string, string> = { '1000': 'Success', '3019': 'Not a KakaoTalk user', '3020': 'AlimTalk blocked' };

export class FakeKakao {
  readonly requests: FakeRequest[] = [];
  readonly messages: FakeMessage[] = [];
  readonly resends: FakeResend[] = [];
  readonly opts: Required<FakeKakaoOptions>;
  baseUrl = '';
  readonly #server: Server;
  readonly #scripts = new Map<string, FakeOutcome[]>();

  private constructor(opts: FakeKakaoOptions) {
    this.opts = { smsSendNos: [], resendEnabled: true, ...opts };
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          json = undefined;
        }
        const r: FakeRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body, json };
        this.requests.push(r);
        const answer = this.#handle(r);
        if (answer === 'hang') return;
        res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json;charset=UTF-8', ...(answer.headers ?? {}) });
        res.end(answer.body);
      });
    });
  }

  static async start(opts: FakeKakaoOptions): Promise<FakeKakao> {
    const fake = new FakeKakao(opts);
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    fake.baseUrl = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The next `times` requests that include `recipientNo` (NHN's form, e.g. 01012345678) get `outcome`. */
  script(recipientNo: string, outcome: FakeOutcome, times = 1): void {
    const queue = this.#scripts.get(recipientNo) ?? [];
    for (let i = 0; i < times; i++) queue.push(outcome);
    this.#scripts.set(recipientNo, queue);
  }

  /** The URL of NHN's lookup of one message (GET), for a test to read a later result as a client would. */
  messageUrl(requestId: string, recipientSeq: number): string {
    return `${this.baseUrl}/alimtalk/v2.3/appkeys/${this.opts.appKey}/messages/${requestId}/${recipientSeq}`;
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }

  #handle(r: FakeRequest): Answer | 'hang' {
    const url = new URL(r.path, 'http://fake');
    const m = /^\/alimtalk\/v2\.3\/appkeys\/([^/]+)\/messages(?:\/([^/]+)\/([0-9]+))?$/.exec(url.pathname);
    if (!m || (r.method === 'POST' && m[2]) || (r.method === 'GET' && !m[2]) || (r.method !== 'POST' && r.method !== 'GET')) {
      return fail(-9998, 'Not exist API', 404);
    }
    if (decodeURIComponent(m[1]!) !== this.opts.appKey) return fail(-1000, 'Invalid appKey.');
    if (r.headers['x-secret-key'] !== this.opts.secretKey) return fail(-1001, 'Invalid secretKey.');
    if (r.method === 'GET') return this.#lookup(m[2]!, Number(m[3]));
    return this.#send(r);
  }

  #lookup(requestId: string, seq: number): Answer {
    const msg = this.messages.find((x) => x.requestId === requestId && x.recipientSeq === seq);
    if (!msg) return fail(-1016, 'It is not found any messages responding with that requestId or recipientSeq.');
    return ok({
      message: {
        requestId: msg.requestId,
        recipientSeq: msg.recipientSeq,
        plusFriendId: '@herald',
        senderKey: this.opts.senderKey,
        templateCode: msg.templateCode,
        recipientNo: msg.recipientNo,
        content: msg.content,
        requestDate: '2026-01-01 09:00:00.0',
        receiveDate: '2026-01-01 09:00:01.0',
        createDate: '2026-01-01 09:00:00.0',
        resendStatus: msg.resendStatus,
        resendStatusName: msg.resendStatusName,
        resendResultCode: msg.resendStatus === 'RSC04' ? '0' : null,
        resendRequestId: msg.resendRequestId,
        messageStatus: msg.messageStatus,
        resultCode: msg.resultCode,
        resultCodeName: msg.resultCodeName,
        senderGroupingKey: null,
        recipientGroupingKey: msg.recipientGroupingKey,
      },
    });
  }

  #send(r: FakeRequest): Answer | 'hang' {
    const type = String(r.headers['content-type'] ?? '');
    if (!/^application\/json/i.test(type)) return fail(-9996, 'Only application/json Content-type is supported.');
    const body = r.json as Record<string, any> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) return fail(-3002, 'Field is not valid.');

    if (typeof body.senderKey !== 'string' || !body.senderKey.trim()) return fail(-2001, "The 'senderKey' must not be blank.");
    if (body.senderKey !== this.opts.senderKey) return fail(-2017, 'Not exist plus friend.');
    if (typeof body.templateCode !== 'string' || !body.templateCode.trim()) return fail(-2001, "The 'templateCode' must not be blank.");
    if (body.templateCode.length > 20) return fail(-2000, "The 'templateCode' must be at less than or equal to 20.");
    const template = this.opts.templates[body.templateCode];
    if (!template) return fail(-3003, 'Template does not exist.');
    if ((template.status ?? 'TSC03') !== 'TSC03') return fail(-3005, 'Please check template status.');
    const list = body.recipientList;
    if (!Array.isArray(list) || list.length === 0) return fail(-2001, "The 'recipientList' must not be blank.");
    if (list.length > 1000) return fail(-2005, "The 'recipientList' must be less than or equal to 1000.");
    for (const rec of list) {
      if (!rec || typeof rec !== 'object' || typeof rec.recipientNo !== 'string' || !rec.recipientNo) return fail(-2001, "The 'recipientNo' must not be blank.");
      if (rec.recipientNo.length > 15) return fail(-2000, "The 'recipientNo' must be at less than or equal to 15.");
      const resend = rec.resendParameter;
      if (resend && resend.isResend === true) {
        if (!this.opts.resendEnabled) return fail(-2502, 'Please set up plus-friend resend setting.');
        if (resend.resendSendNo !== undefined && !this.opts.smsSendNos.includes(String(resend.resendSendNo))) return fail(-1003, 'Invalid Sms Sendno');
      }
    }

    for (const rec of list) {
      const next = this.#scripts.get(rec.recipientNo)?.[0];
      if (!next || !['server_error', 'system_error', 'throttled', 'hang', 'raw'].includes(next.kind)) continue;
      this.#scripts.get(rec.recipientNo)!.shift();
      switch (next.kind) {
        case 'hang':
          return 'hang';
        case 'raw':
          return { status: next.status, body: next.body, headers: next.headers ?? {}, contentType: 'text/plain' };
        case 'throttled':
          return { status: 429, body: '<html><body><h1>429 Too Many Requests</h1></body></html>', contentType: 'text/html', headers: next.retryAfter ? { 'retry-after': next.retryAfter } : {} };
        case 'server_error':
          return { status: next.status ?? 503, body: '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>', contentType: 'text/html', headers: next.retryAfter ? { 'retry-after': next.retryAfter } : {} };
        case 'system_error':
          return fail(-9999, 'System error. Please inquire at support@toast.com.', 500);
      }
    }

    const requestId = newRequestId();
    const sendResults: Record<string, unknown>[] = [];
    list.forEach((rec: Record<string, any>, i: number) => {
      const seq = i + 1;
      const result = (code: number, message: string) =>
        sendResults.push({ recipientSeq: seq, recipientNo: rec.recipientNo, resultCode: code, resultMessage: message, recipientGroupingKey: rec.recipientGroupingKey ?? null });
      const scripted = this.#scripts.get(rec.recipientNo)?.shift();
      if (scripted?.kind === 'result') return result(scripted.code, scripted.message);
      if (!/^(01[016789][0-9]{7,8}|[1-9][0-9]{7,14})$/.test(rec.recipientNo)) return result(-4019, 'Invalid recipient number.');
      const params: Record<string, unknown> = rec.templateParameter && typeof rec.templateParameter === 'object' ? rec.templateParameter : {};
      for (const v of Object.values(params)) {
        if (typeof v === 'string' && Array.from(v).length > 1300) return result(-3048, "The template parameter's length can not exceed 1300 characters.");
      }
      let missing = false;
      const content = template.content.replace(/#\{([^}]+)\}/g, (_, name: string) => {
        const v = params[name];
        if (typeof v !== 'string') {
          missing = true;
          return '';
        }
        return v;
      });
      if (missing) return result(-3049, 'The template parameter is not matched to template.');
      if (Array.from(content).length > 1300) return result(-2019, 'The content that is replaced by the template parameters can not exceed 1,300 characters.');

      const failure = scripted?.kind === 'not_kakao_user' ? '3019' : scripted?.kind === 'blocked' ? '3020' : null;
      const resend = rec.resendParameter;
      const wantsResend = resend?.isResend === true && typeof resend.resendSendNo === 'string';
      const msg: FakeMessage = {
        requestId,
        recipientSeq: seq,
        recipientNo: rec.recipientNo,
        templateCode: body.templateCode,
        content,
        recipientGroupingKey: rec.recipientGroupingKey ?? null,
        messageStatus: failure ? 'FAILED' : 'COMPLETED',
        resultCode: failure ?? '1000',
        resultCodeName: KAKAO_RESULTS[failure ?? '1000']!,
        resendStatus: 'RSC01',
        resendStatusName: RESEND_NAMES.RSC01,
        resendRequestId: null,
      };
      if (wantsResend) {
        msg.resendStatus = failure ? 'RSC04' : 'RSC02';
        msg.resendStatusName = RESEND_NAMES[msg.resendStatus];
        if (failure) {
          msg.resendRequestId = newRequestId();
          const type = resend.resendType === 'SMS' || resend.resendType === 'LMS' ? resend.resendType : Buffer.byteLength(content) > 90 ? 'LMS' : 'SMS';
          this.resends.push({ recipientNo: rec.recipientNo, sendNo: resend.resendSendNo, type, title: typeof resend.resendTitle === 'string' ? resend.resendTitle : null, content: typeof resend.resendContent === 'string' ? resend.resendContent : content });
        }
      }
      this.messages.push(msg);
      return result(0, 'SUCCESS');
    });

    const allFailed = sendResults.every((s) => s.resultCode !== 0);
    const header = allFailed
      ? { resultCode: -1031, resultMessage: 'All of receivers are failed to send.', isSuccessful: false }
      : { resultCode: 0, resultMessage: 'SUCCESS', isSuccessful: true };
    return { status: 200, body: JSON.stringify({ header, message: { requestId, senderGroupingKey: body.senderGroupingKey ?? null, sendResults } }) };
  }
}

interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
  contentType?: string;
}

function fail(code: number, message: string, status = 200): Answer {
  return { status, body: JSON.stringify({ header: { resultCode: code, resultMessage: message, isSuccessful: false } }) };
}

function ok(rest: Record<string, unknown>): Answer {
  return { status: 200, body: JSON.stringify({ header: { resultCode: 0, resultMessage: 'SUCCESS', isSuccessful: true }, ...rest }) };
}

/** NHN request ids look like 20260101090000aBcDeFgHiJ (request time + 10 random characters). */
function newRequestId(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return `${stamp}${randomBytes(8).toString('base64url').slice(0, 10)}`;
}
