// Constants of the real service (protocol §1.3, §1.4). Kept in one place so the simulator and the
// workload cannot drift apart on a literal.

/** mtop h5 appKey: the one inside the sign string and the `appKey` query param. */
export const MTOP_APP_KEY = '34839810';
/** IM app key: inside the token request `data` and the `app-key` header of `/reg`. */
export const IM_APP_KEY = '444e9908a51d1cb236a27862abc769c9';
export const MTOP_JSV = '2.7.2';

export const CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36';
/** The `ua` header of `/reg`: the browser UA plus the DingTalk web-SDK suffix. */
export const IM_UA = `${CHROME_UA} DingTalk(2.1.5) OS(Windows/10) Browser(Chrome/133.0.0.0) DingWeb/2.1.5 IMPaaS DingWeb/2.1.5`;

export const ORIGIN = 'https://www.goofish.com';
export const REFERER = 'https://www.goofish.com/';

/** Suffix of user and conversation ids on the wire. */
export const ID_SUFFIX = '@goofish';

export const API_TOKEN = 'mtop.taobao.idlemessage.pc.login.token';
export const API_ITEM_DETAIL = 'mtop.taobao.idle.pc.detail';

/** lwp paths used by the workload. */
export const LWP = {
  register: '/reg',
  heartbeat: '/!',
  ackDiff: '/r/SyncStatus/ackDiff',
  vulcan: '/s/vulcan',
  sync: '/s/sync',
  send: '/r/MessageSend/sendByReceiverScope',
  history: '/r/MessageManager/listUserMessages',
  listConversations: '/r/Conversation/listNewestPagination',
} as const;

/** First page cursor of listUserMessages: Number.MAX_SAFE_INTEGER. */
export const HISTORY_FIRST_CURSOR = 9007199254740991;

/** Strips the `@goofish` suffix (anything from the first `@`). */
export function bareId(id: string): string {
  const at = id.indexOf('@');
  return at === -1 ? id : id.slice(0, at);
}

export function wireId(id: string): string {
  return id.includes('@') ? id : `${id}${ID_SUFFIX}`;
}
